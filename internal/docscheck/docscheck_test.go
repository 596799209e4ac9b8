package docscheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// repoRoot finds the directory holding the main module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/cross-layer-telemetry/clt\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod of github.com/cross-layer-telemetry/clt) not found")
		}
		dir = parent
	}
}

// TestRepositoryCitations is the check itself: every design citation in the
// tree resolves inside the repository.
func TestRepositoryCitations(t *testing.T) {
	root := repoRoot(t)
	problems, err := Check(os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// This file's expectations name broken citations on purpose.
		if p.File == "internal/docscheck/docscheck_test.go" {
			continue
		}
		t.Errorf("%s", p)
	}
	// The design documents the code cites must be there with their sections.
	c := &checker{fsys: os.DirFS(root), sections: map[string]map[string]bool{}}
	for doc, secs := range map[string][]string{
		"docs/architecture.md": {"1", "2", "5", "8"},
		"docs/wire-format.md":  {"1", "2.5", "2.6", "3.2", "3.3", "3.4", "4", "5", "6", "7", "8", "9", "10"},
		"docs/storage.md":      {"2", "4", "5"},
		"docs/jaeger.md":       {"1", "3", "5", "7", "8"},
	} {
		have := c.sectionsOf(doc)
		for _, s := range secs {
			if !have[s] {
				t.Errorf("%s: section §%s missing", doc, s)
			}
		}
	}
}

// md builds a document name without writing one literally, so that this
// file's own lines do not cite documents the repository lacks.
func md(name string) string { return name + ".md" }

// TestCheckFindsEveryKind feeds a small tree with one problem of each kind
// and one valid citation of each kind.
func TestCheckFindsEveryKind(t *testing.T) {
	fsys := fstest.MapFS{
		"go.mod":                  {Data: []byte("module example\n")},
		"README" + ".md":          {Data: []byte("See [the design](docs/" + md("arch") + ") and [gone](docs/" + md("gone") + ").\n")},
		"docs/" + md("arch"):      {Data: []byte("# Arch\n\n## §1 One\n\n### §1.2 Sub\n\n```\n## §9 not a heading inside a fence\n```\nSee " + md("wire") + " §3.\n")},
		"docs/" + md("wire"):      {Data: []byte("## §3 Three\n")},
		"pkg/a.go":                {Data: []byte("package a\n\n// ok: docs/" + md("arch") + " §1.2 and " + md("arch") + " §1, §1.2\n")},
		"pkg/b.go":                {Data: []byte("package a\n\n// bad section: docs/" + md("arch") + " §2\n// bad list: " + md("wire") + " §3 and §4\n")},
		"pkg/c.go":                {Data: []byte("package a\n\n// retired: " + md("kernel-ioam") + " §4\n// missing: docs/" + md("nope") + "\n")},
		"pkg/d.sh":                {Data: []byte("# from " + ".." + "/shared/x and /work/" + "shared" + "/design/y\n")},
		"pkg/e.go":                {Data: []byte("package a\n\n// fenced heading is not a section: docs/" + md("arch") + " §9\n")},
		"pkg/g.sh":                {Data: []byte("# ui assets: " + ".." + "/shared/jaeger-ui/build\n")},
		"Makefile":                {Data: []byte("# ui: " + ".." + "/shared/jaeger-ui/build, notes: " + ".." + "/shared/notes\n")},
		"pkg/f.go":                {Data: []byte("package a\n\n// other project: internal/storage/v2/grpc/" + "README" + ".md, https://example.com/" + md("x") + "\n")},
		".cache/x.go":             {Data: []byte("// ignored: docs/" + md("nope") + "\n")},
		"pkg/data.bin":            {Data: []byte("docs/" + md("nope"))},
		"examples/" + md("guide"): {Data: []byte("[up](../docs/" + md("arch") + "#one) [web](https://example.com) [anchor](#x) [bad](" + md("missing") + ")\n")},
	}
	problems, err := Check(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	want := []string{
		`Makefile:1: cites "../shared": the design lives in docs/, never outside the repository`,
		"README.md:1: docs/gone.md does not exist in the repository",
		"README.md:1: link target docs/gone.md does not exist",
		"examples/guide.md:1: link target missing.md does not exist",
		"examples/guide.md:1: missing.md does not exist in the repository",
		"pkg/b.go:3: docs/arch.md has no section §2",
		"pkg/b.go:4: docs/wire.md has no section §4",
		"pkg/c.go:3: kernel-ioam.md does not exist in the repository",
		"pkg/c.go:4: docs/nope.md does not exist in the repository",
		`pkg/d.sh:1: cites "../shared": the design lives in docs/, never outside the repository`,
		`pkg/d.sh:1: cites "shared` + `/design": the design lives in docs/, never outside the repository`,
		"pkg/e.go:3: docs/arch.md has no section §9",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
