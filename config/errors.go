package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/internal/yamlpos"
	"github.com/flowguard/flowguard/rules"
)

// Error is one problem of a configuration, placed in the file that holds
// it: "flowguard.yaml:12:5: log.level: ...". Line and Column are 1-based,
// 0 when unknown (a file that cannot be read, a setting left at its
// default).
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Error formats e as file:line:col: message, as rule errors read.
func (e *Error) Error() string {
	return (&rules.Error{File: e.File, Line: e.Line, Column: e.Column, Msg: e.Msg}).Error()
}

// ErrorList is every problem one check found. It implements error, one
// problem a line.
type ErrorList []*Error

// Error returns the problems one a line.
func (l ErrorList) Error() string {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...).Error()
}

// Sort orders the list by file, then line and column, dropping exact
// repeats (the same problem found by two layers). files gives the order of
// the files (the config first, then rule files in load order); files it
// does not name sort after, by name.
func (l *ErrorList) Sort(files ...string) {
	rank := map[string]int{}
	for i, f := range files {
		if _, ok := rank[f]; !ok {
			rank[f] = i
		}
	}
	order := func(f string) int {
		if r, ok := rank[f]; ok {
			return r
		}
		return len(files)
	}
	s := *l
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if oa, ob := order(a.File), order(b.File); oa != ob {
			return oa < ob
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := map[string]bool{}
	out := s[:0]
	for _, e := range s {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	*l = out
}

// Check reads the configuration at path as Load does, but carries on past
// errors: it returns the configuration as far as it could be decoded, its
// YAML tree (nil when the file is not YAML) and every problem found in the
// file, each at its line and column. A YAML syntax error stops the check
// there (nothing after it can be read reliably); unknown keys, values of the
// wrong type and invalid values are all reported together.
func Check(path string) (*Config, *yaml.Node, ErrorList) {
	c := &Config{path: path}
	data, err := os.ReadFile(path)
	if err != nil {
		c.withDefaults()
		return c, nil, ErrorList{{File: path, Msg: err.Error()}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		c.withDefaults()
		return c, nil, ErrorList{syntaxError(path, data, err)}
	}
	var errs ErrorList
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// The decoder went on past each of these: the rest is decoded.
			for _, m := range te.Errors {
				errs = append(errs, Locate(path, &root, errors.New(m))...)
			}
		} else {
			errs = append(errs, Locate(path, &root, err)...)
		}
	}
	c.withDefaults()
	if err := c.validate(); err != nil {
		errs = append(errs, Locate(path, &root, err)...)
	}
	errs.Sort(path)
	return c, &root, errs
}

// decodeError turns an UnmarshalYAML method's error into a *yaml.TypeError:
// the decoder records those and carries on with the rest of the file,
// where any other error stops it.
func decodeError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return te
	}
	return &yaml.TypeError{Errors: leafMessages(err)}
}

// syntaxError places a YAML syntax error at its line and column.
func syntaxError(path string, data []byte, err error) *Error {
	line, col, msg := yamlpos.Syntax(data, err)
	return &Error{File: path, Line: line, Column: col, Msg: msg}
}

var (
	lineRE   = regexp.MustCompile(`(?:\(line (\d+)\)|line (\d+):) ?`)
	quotedRE = regexp.MustCompile("\"([^\"]*)\"|`([^`]*)`|'([^']*)'")
	pathRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*$`)
	stepRE   = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]`)
	fieldRE  = regexp.MustCompile(`field (\S+) not found in type \S+`)
	intoRE   = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")
)

// Locate places every problem err holds (errors.Join trees, wrapped with
// "section: " prefixes) in the file's YAML tree root: one Error each, at
// the line and column of the key or value it names. A message naming
// "line N" is placed on that line; one starting with a setting's path
// ("log.level: ...", "listen[1]: name: ...", "notifiers[0] \"x\": url:
// ...") at that setting. What cannot be placed keeps line 0.
func Locate(file string, root *yaml.Node, err error) ErrorList {
	var out ErrorList
	for _, msg := range leafMessages(err) {
		out = append(out, place(file, root, msg))
	}
	return out
}

// leafMessages flattens err into one message per problem, each with the
// prefixes the errors wrapping it added.
func leafMessages(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, leafMessages(e)...)
		}
		return out
	}
	msg := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		if im := inner.Error(); strings.HasSuffix(msg, im) {
			prefix := msg[:len(msg)-len(im)]
			leaves := leafMessages(inner)
			for i := range leaves {
				leaves[i] = prefix + leaves[i]
			}
			return leaves
		}
	}
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// place finds where msg points in the tree.
func place(file string, root *yaml.Node, msg string) *Error {
	line := 0
	for _, m := range lineRE.FindAllStringSubmatch(msg, -1) {
		n, _ := strconv.Atoi(m[1] + m[2])
		line = n // the last "line N" is the innermost
	}
	text := strings.TrimSpace(lineRE.ReplaceAllString(msg, ""))
	text = readable(text)
	e := &Error{File: file, Line: line, Msg: text}
	if root == nil {
		return e
	}
	if key, sub := walk(root, text); sub != nil && (key == nil || key.Line >= line) {
		n := key
		switch {
		case key != nil && strings.Contains(text, "unknown key"):
		case within(sub, text) != nil:
			n = within(sub, text)
		case sub.Kind == yaml.ScalarNode || key == nil:
			n = sub
		}
		e.Line, e.Column = n.Line, n.Column
		return e
	}
	if line > 0 {
		e.Column = columnOn(root, line, msg)
	}
	return e
}

// readable rewrites yaml.v3's messages that name Go types.
func readable(msg string) string {
	msg = fieldRE.ReplaceAllString(msg, `unknown key "$1"`)
	return intoRE.ReplaceAllStringFunc(msg, func(s string) string {
		m := intoRE.FindStringSubmatch(s)
		want := m[3]
		switch {
		case strings.HasPrefix(want, "int"), strings.HasPrefix(want, "uint"):
			want = "a whole number"
		case strings.HasPrefix(want, "float"):
			want = "a number"
		case want == "bool":
			want = "true or false"
		case strings.HasPrefix(want, "[]"):
			want = "a list"
		case strings.HasPrefix(want, "map["):
			want = "a mapping"
		case want == "string":
			want = "a string"
		default:
			want = "a " + strings.TrimPrefix(want, "config.")
		}
		if m[1] == "map" || m[1] == "seq" {
			return fmt.Sprintf("a %s where %s is expected", map[string]string{"map": "mapping", "seq": "list"}[m[1]], want)
		}
		return fmt.Sprintf("%q is not %s", m[2], want)
	})
}

// walk follows the setting path msg starts with ("log.level: ...",
// "rules_limits: max_nodes: ...", "notifiers[0] \"hook\" (webhook): url:
// ...") down the tree and returns the deepest node it reached and the key
// naming it (nil for a list item); sub is nil when the first step names
// nothing.
func walk(root *yaml.Node, msg string) (key, sub *yaml.Node) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, seg := range strings.Split(msg, ": ") {
		word, _, _ := strings.Cut(seg, " ")
		if !pathRE.MatchString(word) {
			break
		}
		advanced := false
		for _, step := range stepRE.FindAllStringSubmatch(word, -1) {
			k, val := child(n, step)
			if val == nil {
				return key, sub
			}
			n, key, sub, advanced = val, k, val, true
		}
		if !advanced {
			break
		}
	}
	return key, sub
}

// within returns the node of a list or mapping sub that msg quotes first
// ("sampling.exporters: \"edge1\" is not an address" points at edge1), or
// nil.
func within(sub *yaml.Node, msg string) *yaml.Node {
	if sub == nil || sub.Kind == yaml.ScalarNode {
		return nil
	}
	for _, m := range quotedRE.FindAllStringSubmatch(msg, -1) {
		want := m[1] + m[2] + m[3]
		var hit *yaml.Node
		var visit func(*yaml.Node)
		visit = func(n *yaml.Node) {
			if hit != nil {
				return
			}
			if n.Kind == yaml.ScalarNode && n.Value == want {
				hit = n
			}
			for _, c := range n.Content {
				visit(c)
			}
		}
		visit(sub)
		if hit != nil {
			return hit
		}
	}
	return nil
}

// child returns the key and value of a mapping's key step[1], or the item
// step[2] of a sequence.
func child(n *yaml.Node, step []string) (key, val *yaml.Node) {
	if step[2] != "" {
		i, _ := strconv.Atoi(step[2])
		if n.Kind == yaml.SequenceNode && i < len(n.Content) {
			return nil, n.Content[i]
		}
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == step[1] {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// columnOn returns the column on line of the node msg names (a quoted
// value, a key the message starts with), else of the first node there.
func columnOn(root *yaml.Node, line int, msg string) int {
	var want []string
	for _, m := range quotedRE.FindAllStringSubmatch(msg, -1) {
		want = append(want, m[1]+m[2]+m[3])
	}
	if m := fieldRE.FindStringSubmatch(msg); m != nil {
		want = append(want, m[1])
	}
	rest := lineRE.Split(msg, -1)
	word, _, _ := strings.Cut(strings.TrimSpace(rest[len(rest)-1]), ":")
	want = append(want, word)
	first, match := 0, 0
	var visit func(*yaml.Node)
	visit = func(n *yaml.Node) {
		if n.Line == line && n.Kind == yaml.ScalarNode {
			if first == 0 || n.Column < first {
				first = n.Column
			}
			for _, w := range want {
				if w != "" && n.Value == w && (match == 0 || n.Column < match) {
					match = n.Column
				}
			}
		}
		for _, c := range n.Content {
			visit(c)
		}
	}
	visit(root)
	if match > 0 {
		return match
	}
	return first
}
