// Package docscheck checks that the repository's design citations resolve
// inside the repository. Its test (go test ./internal/docscheck, part of
// make test-unit) runs Check on the whole tree and fails on any problem:
//
//   - a path to a docs file (docs/<name>.md) that does not exist;
//   - a section citation (<name>.md §4, docs/<name>.md §3.2, also lists such as
//     "§4, §5 and §6") whose document does not exist or has no heading for
//     that section ("## §4 ..." or "### §3.2 ...");
//   - a bare document name (<name>.md without a directory) that exists neither
//     next to the citing file, nor in docs/, nor at the repository root;
//   - a relative Markdown link target that does not exist;
//   - any mention of the design folder outside the repository, which the
//     repository must never depend on (the optional jaeger-ui build next to
//     it is allowed; see allowed).
//
// The design documents themselves are described in docs/architecture.md.
// Standard library only; nothing imports this package.
package docscheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Problem is one unresolved citation.
type Problem struct {
	File string // slash-separated, relative to the repository root
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// forbidden are the spellings of the folder outside the repository that held
// the raw design notes. They are built by concatenation so that this file
// does not contain them itself.
var forbidden = []string{
	".." + "/shared",
	"shared" + "/design",
}

// allowed are mentions of that folder that are not design citations: the
// jaeger-ui build the demo and its browser test use when it is present (an
// optional runtime input with its own flag and variable, never needed to build
// or understand the repository).
var allowed = []string{
	".." + "/shared/jaeger-ui",
}

// skipDirs are not scanned: version control, build caches, dependencies.
var skipDirs = map[string]bool{".git": true, ".cache": true, "node_modules": true, "vendor": true}

var (
	// docToken is a Markdown file name with an optional directory part.
	docToken = regexp.MustCompile(`(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*\.md\b`)
	// sectionList follows a document name: " §4", " §3.2", " §4, §5 and §6".
	sectionList = regexp.MustCompile(`^\s+§\d+(?:\.\d+)*(?:(?:,\s*|\s+and\s+|\s*/\s*)§\d+(?:\.\d+)*)*`)
	sectionNum  = regexp.MustCompile(`§(\d+(?:\.\d+)*)`)
	// heading is a Markdown heading that defines a section: "## §4 Title".
	heading = regexp.MustCompile(`^#{1,6}\s+§(\d+(?:\.\d+)*)(?:\s|$)`)
	// mdLink is the target of a Markdown link or image.
	mdLink = regexp.MustCompile(`\]\(([^()\s]+)\)`)
)

// scanned reports whether a file is read: source, scripts, configuration
// and documentation.
func scanned(name string) bool {
	base := path.Base(name)
	if base == "Makefile" || strings.HasPrefix(name, ".ci/") {
		return true
	}
	switch path.Ext(base) {
	case ".go", ".md", ".sh", ".yaml", ".yml", ".proto", ".txt":
		return true
	}
	return false
}

// Check walks fsys (the repository root) and returns every unresolved
// citation, sorted by file and line.
func Check(fsys fs.FS) ([]Problem, error) {
	c := &checker{fsys: fsys, sections: map[string]map[string]bool{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name != "." && skipDirs[d.Name()] {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !scanned(name) {
			return nil
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		c.file(name, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("docscheck: %w", err)
	}
	sort.Slice(c.problems, func(i, j int) bool {
		a, b := c.problems[i], c.problems[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Msg < b.Msg
	})
	return c.problems, nil
}

type checker struct {
	fsys     fs.FS
	sections map[string]map[string]bool // document → section numbers it defines
	problems []Problem
}

func (c *checker) add(file string, line int, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) exists(name string) bool {
	if name == "" || strings.HasPrefix(name, "../") || name == ".." {
		return false
	}
	_, err := fs.Stat(c.fsys, name)
	return err == nil
}

// resolve finds the document a token names, as seen from file: a path
// containing docs/ is taken from the repository's docs folder, another path
// relative to the citing file, then to the root; a bare name next to the
// citing file, then in docs/, then at the root. It returns "" when none
// exists.
func (c *checker) resolve(file, token string) string {
	dir := path.Dir(file)
	var candidates []string
	if i := strings.LastIndex(token, "docs/"); i >= 0 && (i == 0 || token[i-1] == '/') {
		candidates = append(candidates, token[i:])
	}
	if strings.Contains(token, "/") {
		candidates = append(candidates, path.Join(dir, token), path.Clean(token))
	} else {
		candidates = append(candidates, path.Join(dir, token), path.Join("docs", token), token)
	}
	for _, n := range candidates {
		if c.exists(n) {
			return n
		}
	}
	return ""
}

// sectionsOf returns the section numbers defined by a document's headings.
func (c *checker) sectionsOf(doc string) map[string]bool {
	if s, ok := c.sections[doc]; ok {
		return s
	}
	s := map[string]bool{}
	if b, err := fs.ReadFile(c.fsys, doc); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		fence := false
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				fence = !fence
				continue
			}
			if m := heading.FindStringSubmatch(line); m != nil && !fence {
				s[m[1]] = true
			}
		}
	}
	c.sections[doc] = s
	return s
}

func (c *checker) file(name string, b []byte) {
	isMD := path.Ext(name) == ".md"
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		rest := line
		for _, a := range allowed {
			rest = strings.ReplaceAll(rest, a, "")
		}
		for _, f := range forbidden {
			if strings.Contains(rest, f) {
				c.add(name, n, "cites %q: the design lives in docs/, never outside the repository", f)
			}
		}
		for _, loc := range docToken.FindAllStringIndex(line, -1) {
			c.token(name, n, line, loc)
		}
		if isMD {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				c.link(name, n, m[1])
			}
		}
	}
}

// token checks one <name>.md occurrence and the sections cited after it.
func (c *checker) token(file string, n int, line string, loc []int) {
	tok := line[loc[0]:loc[1]]
	if loc[0] > 0 && strings.ContainsRune(":/.", rune(line[loc[0]-1])) {
		return // part of a URL or of a longer path the regexp did not take
	}
	secs := sectionList.FindString(line[loc[1]:])
	inDocs := strings.HasPrefix(tok, "docs/") || strings.Contains(tok, "/docs/")
	bare := !strings.Contains(tok, "/")
	if !inDocs && !bare && secs == "" {
		return // a path into some other project (e.g. Jaeger's own README.md)
	}
	doc := c.resolve(file, tok)
	if doc == "" {
		c.add(file, n, "%s does not exist in the repository", tok)
		return
	}
	if secs == "" {
		return
	}
	have := c.sectionsOf(doc)
	for _, m := range sectionNum.FindAllStringSubmatch(secs, -1) {
		if !have[m[1]] {
			c.add(file, n, "%s has no section §%s", doc, m[1])
		}
	}
}

// link checks a relative Markdown link target.
func (c *checker) link(file string, n int, target string) {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
		return
	}
	if i := strings.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	p := path.Join(path.Dir(file), target)
	if strings.HasPrefix(target, "/") || !c.exists(p) {
		c.add(file, n, "link target %s does not exist", target)
	}
}
