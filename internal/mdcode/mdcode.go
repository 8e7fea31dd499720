// Package mdcode reads the commands a Markdown document shows: the lines
// of the fenced code blocks under one heading. Tests use it to run the
// documentation's commands exactly as written.
package mdcode

import (
	"fmt"
	"os"
	"strings"
)

// SectionLines returns the lines of the fenced code blocks in the section
// of the Markdown file at path that starts with the heading title (any
// level, "## Five-minute start" is title "Five-minute start") and ends at
// the next heading of the same or a higher level. Blank lines and lines
// starting with "#" inside the blocks (shell comments) are left out; a line
// ending in "\" is joined with the next.
func SectionLines(path, title string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	level, start := 0, -1
	inCode := false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		if l := headingLevel(line); l > 0 && strings.TrimSpace(line[l:]) == title {
			level, start = l, i+1
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%s has no heading %q", path, title)
	}
	var out []string
	inCode = false
	pending := ""
	for _, line := range lines[start:] {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			if l := headingLevel(line); l > 0 && l <= level {
				break
			}
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont
			continue
		}
		line = pending + line
		pending = ""
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, nil
}

// Commands returns the lines of SectionLines that start with prefix (such
// as "snmptrapd " or "flowguard "), leaving out the sample output the
// blocks may show.
func Commands(path, title, prefix string) ([]string, error) {
	lines, err := SectionLines(path, title)
	if err != nil {
		return nil, err
	}
	var cmds []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			cmds = append(cmds, l)
		}
	}
	return cmds, nil
}

func headingLevel(line string) int {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || n == len(line) || line[n] != ' ' {
		return 0
	}
	return n
}
