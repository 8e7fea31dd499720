package rules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	pathpkg "path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/internal/yamlpos"
)

// Load reads rule files and compiles them into one Set. Each path is a
// file or a directory; a directory contributes its *.yaml and *.yml files
// (sorted by name, not recursing: test fixtures live in sub-directories).
// Lists and macros are shared by every file of one Load.
//
// Load checks everything and reports every error of every file at once,
// as an ErrorList. It always returns a Set, holding the rules that are
// valid even when others are not: a command-line check fails on any error,
// while a daemon reload may choose to keep the previous set, or run the
// good rules.
//
// Load uses the default Options: DefaultLimits, and an empty file is an
// error.
func Load(paths ...string) (*Set, error) { return Options{}.Load(paths...) }

// Options tune a load.
type Options struct {
	// Limits bound each condition; zero fields take DefaultLimits.
	Limits Limits
	// AllowEmpty accepts a rule file that defines nothing (no list,
	// macro or rule; comments do not count). By default such a file is
	// an error: it is most often one truncated by a failed copy, and
	// loading it would silently drop its rules.
	AllowEmpty bool
}

// Load is the package's Load with these options.
func (o Options) Load(paths ...string) (*Set, error) {
	l := newLoader(o)
	for _, p := range paths {
		files, err := ruleFiles(p)
		if err != nil {
			l.errs = append(l.errs, &Error{File: p, Msg: err.Error(), order: len(l.srcs)})
			continue
		}
		for _, f := range files {
			data, err := l.read(func() (io.ReadCloser, error) { return os.Open(f) })
			if err != nil {
				l.errs = append(l.errs, &Error{File: f, Msg: err.Error(), order: len(l.srcs)})
				continue
			}
			l.add(f, data)
		}
	}
	return l.run()
}

// LoadFS is Load for a file system (an embedded rule pack): each path is a
// file or a directory of fsys, with the same rules as Load.
func LoadFS(fsys fs.FS, paths ...string) (*Set, error) { return Options{}.LoadFS(fsys, paths...) }

// LoadFS is the package's LoadFS with these options.
func (o Options) LoadFS(fsys fs.FS, paths ...string) (*Set, error) {
	l := newLoader(o)
	for _, p := range paths {
		files, err := ruleFilesFS(fsys, p)
		if err != nil {
			l.errs = append(l.errs, &Error{File: p, Msg: err.Error(), order: len(l.srcs)})
			continue
		}
		for _, f := range files {
			data, err := l.read(func() (io.ReadCloser, error) { return fsys.Open(f) })
			if err != nil {
				l.errs = append(l.errs, &Error{File: f, Msg: err.Error(), order: len(l.srcs)})
				continue
			}
			l.add(f, data)
		}
	}
	return l.run()
}

// LoadBytes compiles one rule file held in memory; name is used in errors.
func LoadBytes(name string, data []byte) (*Set, error) { return Options{}.LoadBytes(name, data) }

// LoadBytes is the package's LoadBytes with these options.
func (o Options) LoadBytes(name string, data []byte) (*Set, error) {
	l := newLoader(o)
	if max := l.opts.Limits.MaxFileBytes; int64(len(data)) > max {
		l.errs = append(l.errs, &Error{File: name, Msg: fileTooLarge(max)})
		return l.set, l.errs.err()
	}
	l.add(name, data)
	return l.run()
}

// read reads a rule file, refusing one larger than MaxFileBytes before
// reading it all: the YAML parser holds many times a file's size.
func (l *loader) read(open func() (io.ReadCloser, error)) ([]byte, error) {
	f, err := open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	max := l.opts.Limits.MaxFileBytes
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errors.New(fileTooLarge(max))
	}
	return data, nil
}

func fileTooLarge(max int64) string {
	return fmt.Sprintf("larger than the limit of %d bytes (max_file_bytes)", max)
}

func ruleFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	return yamlFiles(entries, func(n string) string { return filepath.Join(path, n) })
}

func ruleFilesFS(fsys fs.FS, path string) ([]string, error) {
	st, err := fs.Stat(fsys, path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := fs.ReadDir(fsys, path)
	if err != nil {
		return nil, err
	}
	return yamlFiles(entries, func(n string) string { return pathpkg.Join(path, n) })
}

// yamlFiles picks the rule files of a directory listing, sorted.
func yamlFiles(entries []fs.DirEntry, join func(string) string) ([]string, error) {
	var files []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			files = append(files, join(n))
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no *.yaml or *.yml files in directory")
	}
	sort.Strings(files)
	return files, nil
}

type source struct {
	name  string
	data  []byte
	order int
	lines []string // source lines, to place errors inside block scalars

	rules *yaml.Node // the rules sequence, nil if none
}

type loader struct {
	srcs   []*source
	errs   ErrorList
	cc     *condCompiler
	defs   map[string]string // list and macro names → where defined
	macros []macroDef
	ids    map[string]string // rule ids → where defined
	set    *Set
	opts   Options
}

type macroDef struct {
	src  *source
	name string
	node *yaml.Node
}

func newLoader(o Options) *loader {
	o.Limits = o.Limits.withDefaults()
	return &loader{
		cc: &condCompiler{lists: map[string]*list{}, macros: map[string]*macro{},
			limits: o.Limits, closures: newClosureCompiler()},
		defs: map[string]string{},
		ids:  map[string]string{},
		set:  &Set{},
		opts: o,
	}
}

func (l *loader) add(name string, data []byte) {
	l.srcs = append(l.srcs, &source{name: name, data: data, order: len(l.srcs)})
	l.set.Files = append(l.set.Files, name)
}

func (l *loader) errorf(src *source, n *yaml.Node, rule, field, format string, args ...any) {
	e := &Error{File: src.name, Rule: rule, Field: field, Msg: fmt.Sprintf(format, args...), order: src.order}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

func where(src *source, n *yaml.Node) string {
	return fmt.Sprintf("%s:%d:%d", src.name, n.Line, n.Column)
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (l *loader) run() (*Set, error) {
	// Pass 1: parse every file, gather lists and macros.
	for _, src := range l.srcs {
		l.parse(src)
	}
	// Pass 2: macros, in dependency order so a broken one is reported once.
	l.compileMacros()
	// Pass 3: rules.
	for _, src := range l.srcs {
		if src.rules == nil {
			continue
		}
		for i, rn := range src.rules.Content {
			if r := l.decodeRule(src, i, resolve(rn)); r != nil {
				if r.disabled {
					l.set.Disabled = append(l.set.Disabled, r.ID)
				} else {
					l.set.Rules = append(l.set.Rules, &r.Rule)
				}
			}
		}
	}
	l.errs.sort()
	return l.set, l.errs.err()
}

func (l *loader) parse(src *source) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src.data, &doc); err != nil {
		e := &Error{File: src.name, order: src.order}
		e.Line, e.Column, e.Msg = yamlpos.Syntax(src.data, err)
		l.errs = append(l.errs, e)
		return
	}
	src.lines = strings.Split(string(src.data), "\n")
	if len(doc.Content) == 0 {
		l.emptyFile(src)
		return
	}
	defined := len(l.defs)
	defer func() {
		if len(l.defs) == defined && (src.rules == nil || len(src.rules.Content) == 0) {
			l.emptyFile(src)
		}
	}()
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		l.errorf(src, root, "", "", "a rule file is a mapping with lists, macros and rules")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if seen[k.Value] {
			l.errorf(src, k, "", k.Value, "defined twice in this file")
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "lists", "macros":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.MappingNode {
				l.errorf(src, v, "", k.Value, "must be a mapping of names to %s", k.Value)
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, val := v.Content[j], resolve(v.Content[j+1])
				l.define(src, k.Value, name, val)
			}
		case "rules":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				l.errorf(src, v, "", "rules", "must be a sequence of rules")
				continue
			}
			src.rules = v
		default:
			l.errorf(src, k, "", "", "unknown section %q (a rule file has lists, macros and rules)%s",
				k.Value, didYouMean(k.Value, []string{"lists", "macros", "rules"}))
		}
	}
}

// emptyFile reports a file that defines nothing, unless allowed.
func (l *loader) emptyFile(src *source) {
	if !l.opts.AllowEmpty {
		l.errs = append(l.errs, &Error{File: src.name, order: src.order,
			Msg: "defines no list, macro or rule (a truncated file?); rules_allow_empty: true allows it"})
	}
}

// define records one list or macro.
func (l *loader) define(src *source, section string, name, val *yaml.Node) {
	field := section + "." + name.Value
	if why := checkName(name.Value); why != "" {
		l.errorf(src, name, "", field, "bad name: %s", why)
		return
	}
	if prev, dup := l.defs[name.Value]; dup {
		l.errorf(src, name, "", field, "%q is already defined at %s", name.Value, prev)
		return
	}
	l.defs[name.Value] = where(src, name)
	if section == "lists" {
		if li := l.decodeList(src, name.Value, val); li != nil {
			l.cc.lists[name.Value] = li
		} else {
			// Keep the name known so users get no "unknown name" noise;
			// conditions using it fail with a short error instead.
			l.cc.macros[name.Value] = &macro{name: name.Value, broken: true, list: true}
		}
		return
	}
	if val.Kind != yaml.ScalarNode || val.Tag != "!!str" {
		l.errorf(src, val, "", field, "must be a condition string")
		l.cc.macros[name.Value] = &macro{name: name.Value, broken: true}
		return
	}
	l.cc.macros[name.Value] = &macro{name: name.Value, src: val.Value}
	l.macros = append(l.macros, macroDef{src, name.Value, val})
}

func (l *loader) compileMacros() {
	// Order by dependencies: a macro compiles after the macros it uses.
	byName := map[string]macroDef{}
	for _, d := range l.macros {
		byName[d.name] = d
	}
	state := map[string]int{} // 1 visiting, 2 done
	var order []macroDef
	var visit func(d macroDef)
	visit = func(d macroDef) {
		if state[d.name] != 0 {
			return
		}
		state[d.name] = 1
		if tree, err := parser.Parse(d.node.Value); err == nil {
			ast.Find(tree.Node, func(n ast.Node) bool {
				if id, ok := n.(*ast.IdentifierNode); ok {
					if dep, ok := byName[id.Value]; ok {
						visit(dep)
					}
				}
				return false
			})
		}
		state[d.name] = 2
		order = append(order, d)
	}
	for _, d := range l.macros {
		visit(d)
	}
	for _, d := range order {
		m := l.cc.macros[d.name]
		c, errs := l.cc.compile(d.node.Value, false, d.name)
		if len(errs) > 0 {
			m.broken = true
			inherited := true
			for _, e := range errs {
				if e.limit != "" && m.limit == "" {
					m.limit = e.limit
				}
				inherited = inherited && e.inherited
			}
			if !inherited {
				// A macro broken only by a macro it uses is reported
				// where it is used, with that macro's limit.
				l.exprErrors(d.src, d.node, "", "macros."+d.name, errs)
			}
			continue
		}
		m.nodes = c.nodes
	}
}

// exprErrors reports errors found inside the expression held by scalar n.
func (l *loader) exprErrors(src *source, n *yaml.Node, rule, field string, errs []*exprError) {
	for _, e := range errs {
		line, col, note := exprPos(src, n, e.Line, e.Col)
		l.errs = append(l.errs, &Error{File: src.name, Line: line, Column: col, Rule: rule,
			Field: field, Msg: e.Msg + note, order: src.order})
	}
}

// exprPos maps a position inside scalar n's value (1-based line, 0-based
// rune column) to a position in the file. Single-line plain and quoted
// scalars and literal blocks ("|") map exactly; elsewhere (folded scalars,
// multi-line flow scalars) the scalar's own position is given and the
// message notes the position inside the expression.
func exprPos(src *source, n *yaml.Node, line, col int) (int, int, string) {
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		// Content starts on the line after the "|" indicator, indented.
		// The block's indentation is its first content line's.
		if l := n.Line + line; n.Line < len(src.lines) && l-1 < len(src.lines) {
			first := src.lines[n.Line]
			indent := len(first) - len(strings.TrimLeft(first, " "))
			return l, indent + col + 1, ""
		}
	case line == 1 && !strings.Contains(n.Value, "\n") && n.Line-1 < len(src.lines) && onOneLine(src.lines[n.Line-1], n):
		off := 0
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			off = 1
		}
		return n.Line, n.Column + off + col, ""
	}
	return n.Line, n.Column, fmt.Sprintf(" (at %d:%d of the expression)", line, col+1)
}

// onOneLine reports whether scalar n ends on the line it starts on.
func onOneLine(text string, n *yaml.Node) bool {
	rest := []rune(text)
	if n.Column-1 > len(rest) {
		return false
	}
	return utf8.RuneCountInString(string(rest[n.Column-1:])) >= utf8.RuneCountInString(n.Value)
}
