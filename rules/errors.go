package rules

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found while loading rules. It reads as a path:
// "rules/scans.yaml:12:5: rule \"port-scan\": threshold: must be > 0".
type Error struct {
	File   string
	Line   int // 1-based; 0 when the error concerns the whole file
	Column int // 1-based; 0 when unknown
	// Rule is the id of the rule at fault, or "rules[N]" when the rule has
	// no usable id. It is empty for lists, macros and file-level errors.
	Rule string
	// Field is the path of the offending field: "threshold", "where",
	// "exceptions[1]", "lists.internal_nets[2]", "macros.outbound".
	Field string
	Msg   string

	order int // load order of File, for sorting
}

// Error formats e as file:line:col: rule "id": field: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Rule != "" {
		if strings.HasPrefix(e.Rule, "rules[") {
			b.WriteString(e.Rule)
		} else {
			fmt.Fprintf(&b, "rule %q", e.Rule)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every error found by one load, in file order and then by
// position. It implements error, one error a line.
type ErrorList []*Error

// Error returns the errors one a line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// sort orders the list by file (in load order), line and column, keeping
// the order of errors found at the same place.
func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.order != b.order {
			return a.order < b.order
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// err returns the list as an error, or nil when it is empty (a nil
// ErrorList in an error interface is not nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
