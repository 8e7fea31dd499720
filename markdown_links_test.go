package flowguard_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Every relative link in the repository's Markdown files resolves: the
// file or folder exists, and a #anchor names a heading (or an explicit
// id) of the target file. Links to other sites are not fetched.
func TestMarkdownLinksResolve(t *testing.T) {
	files := markdownFiles(t)
	if len(files) < 5 {
		t.Fatalf("found %d Markdown files, expected the README and the package READMEs", len(files))
	}
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		a := markdownAnchors(string(data))
		anchors[path] = a
		return a
	}
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(data)) {
			target, frag, _ := strings.Cut(l.target, "#")
			if isExternal(target) {
				continue
			}
			checked++
			path := file
			if target != "" {
				path = filepath.Join(filepath.Dir(file), filepath.FromSlash(target))
				if strings.HasPrefix(target, "/") {
					path = filepath.FromSlash(strings.TrimPrefix(target, "/"))
				}
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Errorf("%s:%d: link %q: no such file or folder", file, l.line, l.target)
				continue
			}
			if frag == "" {
				continue
			}
			if st.IsDir() || !strings.HasSuffix(path, ".md") {
				t.Errorf("%s:%d: link %q: an anchor into something not Markdown", file, l.line, l.target)
				continue
			}
			if !anchorsOf(path)[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading #%s", file, l.line, l.target, path, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link parser is broken")
	}
}

// The anchors are GitHub's: "## Exit codes & signals" is #exit-codes--signals,
// and a repeated heading gets -1, -2.
func TestMarkdownAnchors(t *testing.T) {
	a := markdownAnchors("# Five-minute start\n## Exit codes & signals\n```\n# not a heading\n```\n## `replay --truth`\n## Usage\n## Usage\n<a id=\"x-y\"></a>\n")
	for _, want := range []string{"five-minute-start", "exit-codes--signals", "replay---truth", "usage", "usage-1", "x-y"} {
		if !a[want] {
			t.Errorf("no anchor %q in %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Error("a line in a code block made an anchor")
	}
	links := markdownLinks("see [a](b.md#c) and `[x](nope.md)`\n```\n[y](nope.md)\n```\n[ref]: d/e.md\n")
	if len(links) != 2 || links[0].target != "b.md#c" || links[1].target != "d/e.md" {
		t.Errorf("links: %+v", links)
	}
}

func markdownFiles(t *testing.T) []string {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

type markdownLink struct {
	target string
	line   int
}

var (
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	explicitID = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
)

// markdownLinks returns the link targets outside code blocks and spans.
func markdownLinks(doc string) []markdownLink {
	var links []markdownLink
	for i, line := range proseLines(doc) {
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			links = append(links, markdownLink{m[1], i + 1})
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			links = append(links, markdownLink{m[1], i + 1})
		}
	}
	return links
}

// markdownAnchors returns the anchors GitHub gives the headings of doc,
// and the explicit <a id> ones.
func markdownAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(doc) {
		for _, m := range explicitID.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		trimmed := strings.TrimLeft(line, "#")
		if n := len(line) - len(trimmed); n == 0 || n > 6 || !strings.HasPrefix(trimmed, " ") {
			continue
		}
		slug := headingSlug(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(trimmed), "#")))
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// headingSlug is GitHub's heading id: lower case, letters, digits, '-'
// and '_' kept, spaces to '-', everything else dropped.
func headingSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && isLetter(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isLetter(r rune) bool { return strings.ToLower(string(r)) != strings.ToUpper(string(r)) }

// proseLines returns doc's lines by index, with the fenced code blocks
// (fences included) blanked.
func proseLines(doc string) []string {
	lines := strings.Split(doc, "\n")
	inCode := false
	for i, line := range lines {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~") {
			inCode = !inCode
			lines[i] = ""
		} else if inCode {
			lines[i] = ""
		}
	}
	return lines
}

func isExternal(target string) bool {
	return strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:")
}
