package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/builtin"
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/flow"
)

// ListKind is the type of a named list, inferred from its items or given
// with the {type, items} form.
type ListKind uint8

// List kinds.
const (
	ListCIDR   ListKind = iota + 1 // addresses and prefixes; a condition sees an *AddrSet
	ListNumber                     // integers; a condition sees []int
	ListString                     // strings; a condition sees []string
)

// String returns the kind as the {type: ...} form spells it.
func (k ListKind) String() string {
	switch k {
	case ListCIDR:
		return "cidr"
	case ListNumber:
		return "number"
	case ListString:
		return "string"
	}
	return "unknown"
}

type list struct {
	name  string
	kind  ListKind
	value any // *AddrSet, []int or []string
}

var nameRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// exprKeywords cannot name a list or macro: the expression lexer reads
// them as operators or literals.
var exprKeywords = []string{"in", "not", "and", "or", "matches", "contains", "startsWith",
	"endsWith", "true", "false", "nil", "let", "if", "else"}

// checkName reports why name cannot name a list or macro, or "".
func checkName(name string) string {
	switch {
	case !nameRe.MatchString(name):
		return "a name is lower-case letters, digits and _, starting with a letter or _"
	case slices.Contains(exprKeywords, name):
		return "is a keyword of the condition language"
	case slices.Contains(reservedNames, name):
		return "is a function name"
	}
	if _, ok := flow.Lookup(name); ok {
		return "is a flow field name"
	}
	if _, ok := builtin.Index[name]; ok {
		return "is a built-in function name"
	}
	return ""
}

// decodeList builds a list from its YAML value: a sequence of items, or a
// mapping {type: cidr|number|string, items: [...]}.
func (l *loader) decodeList(src *source, name string, n *yaml.Node) *list {
	field := "lists." + name
	var kind ListKind
	items := n
	if n.Kind == yaml.MappingNode {
		items = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], resolve(n.Content[i+1])
			switch k.Value {
			case "type":
				switch v.Value {
				case "cidr":
					kind = ListCIDR
				case "number":
					kind = ListNumber
				case "string":
					kind = ListString
				default:
					l.errorf(src, v, "", field+".type", "must be one of cidr, number, string")
					return nil
				}
			case "items":
				items = v
			default:
				l.errorf(src, k, "", field, "unknown field %q (a list is a sequence, or {type, items})", k.Value)
			}
		}
		if kind == 0 {
			l.errorf(src, n, "", field, "type: required (cidr, number or string)")
			return nil
		}
		if items == nil {
			return &list{name: name, kind: kind, value: emptyListValue(kind)}
		}
	}
	if items.Kind != yaml.SequenceNode {
		l.errorf(src, items, "", field, "must be a sequence of items, as in [10.0.0.0/8, 192.168.0.0/16]")
		return nil
	}
	if max := l.opts.Limits.MaxListItems; len(items.Content) > max {
		l.errorf(src, items, "", field, "%d items, more than the limit of %d (max_list_items)", len(items.Content), max)
		return nil
	}
	for i, it := range items.Content {
		if it = resolve(it); it.Kind != yaml.ScalarNode {
			l.errorf(src, it, "", fmt.Sprintf("%s[%d]", field, i), "must be a single value")
			return nil
		}
		if max := l.opts.Limits.MaxString; len(it.Value) > max {
			l.errorf(src, it, "", fmt.Sprintf("%s[%d]", field, i), "item of %d bytes, more than the limit of %d (max_string)", len(it.Value), max)
			return nil
		}
	}
	if kind == 0 {
		kind = inferListKind(items.Content)
	}
	if kind == 0 {
		l.errorf(src, items, "", field, "empty list: give its type as {type: cidr|number|string, items: []}")
		return nil
	}
	bad := false
	var (
		prefixes []netip.Prefix
		ints     []int
		strs     []string
	)
	for i, it := range items.Content {
		it = resolve(it)
		switch kind {
		case ListCIDR:
			p, err := parseAddrOrPrefix(it.Value)
			if err != nil {
				var hb *hostBitsError
				if !errors.As(err, &hb) {
					err = fmt.Errorf("%q is not an address or prefix", it.Value)
				}
				l.errorf(src, it, "", fmt.Sprintf("%s[%d]", field, i), "%v", err)
				bad = true
				continue
			}
			prefixes = append(prefixes, p)
		case ListNumber:
			x, err := strconv.ParseInt(strings.ReplaceAll(it.Value, "_", ""), 0, 64)
			if err != nil || it.Tag != "!!int" {
				l.errorf(src, it, "", fmt.Sprintf("%s[%d]", field, i), "%q is not an integer", it.Value)
				bad = true
				continue
			}
			ints = append(ints, int(x))
		case ListString:
			strs = append(strs, it.Value)
		}
	}
	if bad {
		return nil
	}
	switch kind {
	case ListCIDR:
		return &list{name: name, kind: kind, value: NewAddrSet(prefixes)}
	case ListNumber:
		return &list{name: name, kind: kind, value: ints}
	}
	return &list{name: name, kind: kind, value: strs}
}

func emptyListValue(k ListKind) any {
	switch k {
	case ListCIDR:
		return NewAddrSet(nil)
	case ListNumber:
		return []int{}
	}
	return []string{}
}

// inferListKind: integers only make a number list; any item that looks
// like an address makes a CIDR list (so a typo in one is reported, not
// turned into a string); anything else is a string list.
func inferListKind(items []*yaml.Node) ListKind {
	if len(items) == 0 {
		return 0
	}
	allInts := true
	for _, it := range items {
		it = resolve(it)
		if it.Tag != "!!int" {
			allInts = false
		}
		if looksLikeAddr(it.Value) {
			return ListCIDR
		}
	}
	if allInts {
		return ListNumber
	}
	return ListString
}

func looksLikeAddr(s string) bool {
	if _, err := parseAddrOrPrefix(s); err == nil {
		return true
	}
	if !strings.ContainsAny(s, ":/") && strings.Count(s, ".") != 3 {
		return false
	}
	return strings.Trim(s, "0123456789abcdefABCDEF.:/%") == ""
}
