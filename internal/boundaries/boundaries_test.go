package boundaries

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/cross-layer-telemetry/clt"

// A component is a group of folders with one owner. Production code may
// import its own component and the components of lower layers, never one of
// the same or a higher layer: that is "no package imports upward". The
// table of docs/contracts.md states the same rules; keep them together.
type component struct {
	name  string
	layer int
}

var (
	compIOAM6     = component{"kernel/ioam6", 0} // pure wire format; everyone may import it
	compInternal  = component{"internal", 1}     // module-wide helpers (internal/...)
	compKernel    = component{"kernel", 2}       // Linux I/O: every kernel/... but kernel/ioam6
	compAPI       = component{"api", 2}          // generated gRPC/protobuf code
	compIOAMStore = component{"ioamstore", 3}    // persistence
	compPlugin    = component{"plugin", 4}       // clt-storage
	compAgent     = component{"agent", 4}        // clt-agent
	compExamples  = component{"examples", 5}     // imported by nothing
	compTools     = component{"tools", 5}        // build tools; imported by nothing
)

var (
	// netnstest is test support: tests and examples only.
	netnstest = "kernel/netnstest"
	// stdlibOnly link the standard library only, like kernel/ioam6.
	stdlibOnly = []string{"kernel/internal/nlmsg"}
	// forbiddenDeps are never linked into the agent.
	forbiddenDeps = []string{"github.com/dgraph-io/badger", "github.com/vishvananda/netlink"}
	// sharedForbiddenDeps are never linked into the shared packages
	// (internal/..., kernel/internal/...) that both binaries import: they stay light.
	sharedForbiddenDeps = []string{"github.com/dgraph-io/badger", "google.golang.org/grpc"}
)

// componentOf classifies a module-relative package path; ok is false for a
// folder the layout does not know (add it to the table and to
// docs/contracts.md).
func componentOf(rel string) (c component, ok bool) {
	under := func(dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }
	switch {
	case under("kernel/ioam6"):
		return compIOAM6, true
	case under("internal"):
		return compInternal, true
	case under("kernel"):
		return compKernel, true
	case under("api"):
		return compAPI, true
	case under("ioamstore"):
		return compIOAMStore, true
	case under("plugin"):
		return compPlugin, true
	case under("agent"):
		return compAgent, true
	case under("examples"):
		return compExamples, true
	case under("tools"):
		return compTools, true
	}
	return component{}, false
}

// pkg is what the rules need of one package of the module (paths of module
// packages relative to the module; others as they are).
type pkg struct {
	Path        string   // module-relative
	Imports     []string // direct imports of the non-test files
	Deps        []string // every package the non-test build links
	TestImports []string // imports of the _test.go files (in- and external)
}

// isStd reports whether path is in the standard library: its first element
// has no dot (the go command's own rule).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// rel returns the module-relative path of a module package.
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// check returns every breach of the layout rules, one line each.
func check(pkgs []pkg) []string {
	var out []string
	bad := func(p pkg, format string, args ...any) {
		out = append(out, p.Path+": "+fmt.Sprintf(format, args...))
	}
	for _, p := range pkgs {
		from, ok := componentOf(p.Path)
		if !ok {
			bad(p, "folder is in no component of docs/contracts.md's layout")
			continue
		}
		// kernel/ioam6 is pure: the standard library only; so is the netlink
		// framing.
		if from == compIOAM6 || slices.Contains(stdlibOnly, p.Path) {
			for _, d := range p.Deps {
				if !isStd(d) {
					bad(p, "links %s: %s imports the standard library only", d, p.Path)
				}
			}
		}
		if from == compInternal || strings.HasPrefix(p.Path, "kernel/internal/") {
			for _, d := range p.Deps {
				for _, f := range sharedForbiddenDeps {
					if d == f || strings.HasPrefix(d, f+"/") {
						bad(p, "links %s: a shared package never links %s", d, f)
					}
				}
			}
		}
		// The agent never links the store, the storage server, badger or a
		// netlink library of its own (kernel/ioam6nl owns IOAM6 netlink).
		if from == compAgent {
			for _, d := range p.Deps {
				r, mod := rel(d)
				switch {
				case mod && (r == "ioamstore" || strings.HasPrefix(r, "ioamstore/")):
					bad(p, "links %s: the agent never links ioamstore", r)
				case mod && (r == "plugin" || strings.HasPrefix(r, "plugin/")):
					bad(p, "links %s: the agent never links plugin", r)
				}
				for _, f := range forbiddenDeps {
					if d == f || strings.HasPrefix(d, f+"/") {
						bad(p, "links %s: the agent never links %s", d, f)
					}
				}
			}
		}
		for _, imp := range p.Imports {
			r, mod := rel(imp)
			if !mod {
				continue
			}
			to, ok := componentOf(r)
			if !ok {
				continue // reported for the imported package itself
			}
			switch {
			case to == compExamples && from != compExamples:
				bad(p, "imports %s: nothing imports examples/...", r)
			case to == compTools && from != compTools:
				bad(p, "imports %s: nothing imports tools/...", r)
			case to != from && to.layer >= from.layer:
				bad(p, "imports %s: %s (layer %d) may not import %s (layer %d)", r, from.name, from.layer, to.name, to.layer)
			case to == compKernel && (from == compIOAMStore || from == compPlugin):
				bad(p, "imports %s: %s imports no kernel package but kernel/ioam6", r, from.name)
			case r == netnstest && from != compExamples && !strings.HasPrefix(p.Path, "kernel/netnstest"):
				bad(p, "imports %s: test support, for tests and examples only", r)
			}
		}
		// Tests may cross components (the agent's tests run a real
		// clt-storage), but nothing, not even a test, imports examples or tools.
		for _, imp := range p.TestImports {
			r, mod := rel(imp)
			if !mod {
				continue
			}
			if to, ok := componentOf(r); ok && to != from && (to == compExamples || to == compTools) {
				bad(p, "test imports %s: nothing imports %s/...", r, to.name)
			}
		}
	}
	return out
}

// listModule loads every package of the module, e2e-tagged files included.
func listModule(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool must be in PATH")
	gomod, err := exec.Command(goBin, "env", "GOMOD").Output()
	require.NoError(t, err)
	cmd := exec.Command(goBin, "list", "-e", "-json", "-tags", "e2e", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())

	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath   string
			Imports      []string
			Deps         []string
			TestImports  []string
			XTestImports []string
			Error        *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		require.Nil(t, p.Error, "go list %s", p.ImportPath)
		r, ok := rel(p.ImportPath)
		require.True(t, ok, "%s is outside the module", p.ImportPath)
		pkgs = append(pkgs, pkg{Path: r, Imports: p.Imports, Deps: p.Deps,
			TestImports: slices.Concat(p.TestImports, p.XTestImports)})
	}
	return pkgs
}

// TestLayout is the executable form of docs/contracts.md's layout table.
func TestLayout(t *testing.T) {
	pkgs := listModule(t)
	// The listing must see the tree, or the test proves nothing.
	paths := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		paths = append(paths, p.Path)
	}
	for _, want := range []string{"kernel/ioam6", "kernel/ioam6nl", "ioamstore", "plugin", "agent", "agent/cmd/clt-agent", "examples/demo"} {
		require.Contains(t, paths, want)
	}
	if breaches := check(pkgs); len(breaches) > 0 {
		t.Errorf("layout rules of docs/contracts.md broken:\n%s", strings.Join(breaches, "\n"))
	}
}

// TestCheck shows that every rule catches its breach and allows what the
// layout allows.
func TestCheck(t *testing.T) {
	m := func(r string) string { return module + "/" + r }
	cases := []struct {
		name string
		p    pkg
		want string // substring of an expected breach; "" for none
	}{
		{"ioam6 stdlib only", pkg{Path: "kernel/ioam6", Imports: []string{"fmt", "golang.org/x/sys/unix"},
			Deps: []string{"fmt", "golang.org/x/sys/unix"}}, "links golang.org/x/sys/unix"},
		{"ioam6 imports nothing of the module", pkg{Path: "kernel/ioam6", Imports: []string{m("kernel/sysctl")},
			Deps: []string{m("kernel/sysctl")}}, "links " + m("kernel/sysctl")},
		{"nlmsg stdlib only", pkg{Path: "kernel/internal/nlmsg", Imports: []string{"github.com/vishvananda/netns"},
			Deps: []string{"github.com/vishvananda/netns"}}, "kernel/internal/nlmsg imports the standard library only"},
		{"shared packages stay light", pkg{Path: "internal/admin", Deps: []string{"google.golang.org/grpc/codes"}}, "never links google.golang.org/grpc"},
		{"kernel shared packages stay light", pkg{Path: "kernel/internal/netnsutil", Deps: []string{"github.com/dgraph-io/badger/v4"}}, "never links github.com/dgraph-io/badger"},
		{"shared packages may use prometheus", pkg{Path: "internal/admin", Deps: []string{"github.com/prometheus/client_golang/prometheus"}}, ""},
		{"ioam6 pure ok", pkg{Path: "kernel/ioam6", Imports: []string{"encoding/binary"}, Deps: []string{"encoding/binary", "internal/abi", "vendor/golang.org/x/net/dns/dnsmessage"}}, ""},
		{"kernel no store", pkg{Path: "kernel/clt", Imports: []string{m("ioamstore")}}, "kernel (layer 2) may not import ioamstore"},
		{"kernel no plugin", pkg{Path: "kernel/ioam6nl", Imports: []string{m("plugin")}}, "may not import plugin"},
		{"kernel no agent", pkg{Path: "kernel/sysctl", Imports: []string{m("agent")}}, "may not import agent"},
		{"kernel no api", pkg{Path: "kernel/sysctl", Imports: []string{m("api/collector/v1")}}, "may not import api"},
		{"kernel within kernel ok", pkg{Path: "kernel/netnstest", Imports: []string{m("kernel/ioam6nl"), m("kernel/sysctl"), m("kernel/ioam6")}}, ""},
		{"ioamstore no plugin", pkg{Path: "ioamstore", Imports: []string{m("plugin")}}, "may not import plugin"},
		{"ioamstore no agent", pkg{Path: "ioamstore", Imports: []string{m("agent")}}, "may not import agent"},
		{"ioamstore no kernel", pkg{Path: "ioamstore", Imports: []string{m("kernel/sysctl")}}, "no kernel package but kernel/ioam6"},
		{"ioamstore kernel/ioam6 ok", pkg{Path: "ioamstore", Imports: []string{m("kernel/ioam6"), m("api/collector/v1")}}, ""},
		{"plugin no kernel", pkg{Path: "plugin", Imports: []string{m("kernel/ioam6nl")}}, "no kernel package but kernel/ioam6"},
		{"plugin kernel/ioam6 ok", pkg{Path: "plugin", Imports: []string{m("kernel/ioam6"), m("ioamstore"), m("api/storagev2")}}, ""},
		{"plugin no agent", pkg{Path: "plugin/cmd/clt-storage", Imports: []string{m("agent")}}, "plugin (layer 4) may not import agent"},
		{"agent no plugin", pkg{Path: "agent", Imports: []string{m("plugin")}, Deps: []string{m("plugin")}}, "never links plugin"},
		{"agent no store (direct)", pkg{Path: "agent", Imports: []string{m("ioamstore")}, Deps: []string{m("ioamstore")}}, "never links ioamstore"},
		{"agent no store (through a dependency)", pkg{Path: "agent/cmd/clt-agent", Imports: []string{m("agent")},
			Deps: []string{m("agent"), m("ioamstore")}}, "never links ioamstore"},
		{"agent no badger", pkg{Path: "agent", Deps: []string{"github.com/dgraph-io/badger/v4/options"}}, "never links github.com/dgraph-io/badger"},
		{"agent no netlink", pkg{Path: "agent", Deps: []string{"github.com/vishvananda/netlink"}}, "never links github.com/vishvananda/netlink"},
		{"agent netns ok", pkg{Path: "agent", Imports: []string{m("kernel/ioam6nl"), m("kernel/ioam6"), m("api/collector/v1"), "github.com/vishvananda/netns"},
			Deps: []string{m("kernel/ioam6nl"), "github.com/vishvananda/netns"}}, ""},
		{"agent tests may run the plugin", pkg{Path: "agent", TestImports: []string{m("plugin"), m("kernel/netnstest")}}, ""},
		{"no import of examples", pkg{Path: "plugin", Imports: []string{m("examples/demo/internal/wire")}}, "nothing imports examples/..."},
		{"no test import of examples", pkg{Path: "kernel/clt", TestImports: []string{m("examples/demo")}}, "test imports examples/demo"},
		{"examples import anything", pkg{Path: "examples/demo", Imports: []string{m("agent"), m("plugin"), m("kernel/netnstest"), m("examples/demo/internal/wire")}}, ""},
		{"no import of tools", pkg{Path: "api/storagev2", Imports: []string{m("tools/otlpdesc")}}, "nothing imports tools/..."},
		{"netnstest is test support", pkg{Path: "agent", Imports: []string{m("kernel/netnstest")}}, "for tests and examples only"},
		{"netnstest outside tests", pkg{Path: "kernel/clt", Imports: []string{m("kernel/netnstest")}}, "for tests and examples only"},
		{"internal imports no kernel I/O", pkg{Path: "internal/x", Imports: []string{m("kernel/ioam6nl")}}, "internal (layer 1) may not import kernel"},
		{"every component may import kernel/ioam6 and internal", pkg{Path: "kernel/clt", Imports: []string{m("kernel/ioam6"), m("internal/x")}}, ""},
		{"unknown folder", pkg{Path: "util"}, "in no component"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := check([]pkg{c.p})
			if c.want == "" {
				assert.Empty(t, got)
				return
			}
			require.NotEmpty(t, got)
			found := slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, c.want) })
			assert.True(t, found, "want a breach containing %q, got %q", c.want, got)
		})
	}
}
