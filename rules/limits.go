package rules

import (
	"fmt"
	"math"
	"reflect"

	"github.com/expr-lang/expr/ast"
)

// Limits bound what a condition may be once its macros are expanded, and
// what it may cost per flow. A rule file is input like any other: a few
// hundred bytes of nested macros must not take the loader's memory, nor a
// condition iterating a million items the engine's time. The zero value of
// a field means its default (DefaultLimits).
type Limits struct {
	// MaxNodes bounds the nodes of a condition after macro expansion.
	// Expansion stops as soon as it would exceed it.
	MaxNodes int `yaml:"max_nodes"`
	// MaxDepth bounds the nesting of the expanded condition.
	MaxDepth int `yaml:"max_depth"`
	// MaxRange bounds the items of a range a..b that is iterated (any,
	// all, filter, map, count, ...). "x in a..b" is not limited by it
	// but costed: a bounds check on closures, every item on the VM when
	// it builds the range.
	MaxRange int `yaml:"max_range"`
	// MaxString bounds a string literal, in bytes.
	MaxString int `yaml:"max_string"`
	// MaxArray bounds the items of an array literal ([22, 23, ...]).
	MaxArray int `yaml:"max_array"`
	// MaxListItems bounds the items of a named list.
	MaxListItems int `yaml:"max_list_items"`
	// MaxFileBytes bounds a rule file, in bytes.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxCost bounds a condition's estimated worst-case cost per flow
	// (see Condition.Cost).
	MaxCost int64 `yaml:"max_cost"`
}

// DefaultLimits are the limits of a load that sets none. They leave room
// for any hand-written rule pack (the bundled one peaks at a cost of 21).
var DefaultLimits = Limits{
	MaxNodes:     2000,
	MaxDepth:     100,
	MaxRange:     65536,
	MaxString:    4096,
	MaxArray:     1000,
	MaxListItems: 1_000_000,
	MaxFileBytes: 16 << 20,
	MaxCost:      1000,
}

// withDefaults fills the unset fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxNodes > 0 {
		d.MaxNodes = l.MaxNodes
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxRange > 0 {
		d.MaxRange = l.MaxRange
	}
	if l.MaxString > 0 {
		d.MaxString = l.MaxString
	}
	if l.MaxArray > 0 {
		d.MaxArray = l.MaxArray
	}
	if l.MaxListItems > 0 {
		d.MaxListItems = l.MaxListItems
	}
	if l.MaxCost > 0 {
		d.MaxCost = l.MaxCost
	}
	if l.MaxFileBytes > 0 {
		d.MaxFileBytes = l.MaxFileBytes
	}
	return d
}

// Validate reports a negative limit; zero means the default.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"max_nodes", int64(l.MaxNodes)}, {"max_depth", int64(l.MaxDepth)}, {"max_range", int64(l.MaxRange)},
		{"max_string", int64(l.MaxString)}, {"max_array", int64(l.MaxArray)}, {"max_list_items", int64(l.MaxListItems)},
		{"max_file_bytes", l.MaxFileBytes}, {"max_cost", l.MaxCost}} {
		if f.v < 0 {
			return fmt.Errorf("%s: must be >= 0 (0: the default)", f.name)
		}
	}
	return nil
}

func nodesExceeded(max int) string {
	return fmt.Sprintf("expands to more than %d nodes (limit max_nodes)", max)
}

// checkLimits walks an expanded condition and reports every limit it
// breaks: its size and depth, its literals, its iterated ranges.
func checkLimits(root ast.Node, lim Limits) []locError {
	c := &limitChecker{lim: lim}
	c.walk(root, 1, false)
	if c.nodes > lim.MaxNodes {
		c.errs = append([]locError{{msg: fmt.Sprintf("has %d nodes after macro expansion, more than the limit of %d (max_nodes)", c.nodes, lim.MaxNodes)}}, c.errs...)
	}
	for i := range c.errs {
		c.errs[i].limit = c.errs[i].msg
	}
	return c.errs
}

type limitChecker struct {
	lim      Limits
	nodes    int
	deepSeen bool
	errs     []locError
}

// walk visits n at depth; inRHS marks the right side of "in", where a
// range is a bounds check rather than a sequence.
func (c *limitChecker) walk(n ast.Node, depth int, inRHS bool) {
	if n == nil {
		return
	}
	c.nodes++
	if depth > c.lim.MaxDepth {
		if !c.deepSeen {
			c.deepSeen = true
			c.errs = append(c.errs, locError{loc: n.Location(),
				msg: fmt.Sprintf("nests deeper than %d levels (limit max_depth)", c.lim.MaxDepth)})
		}
		return
	}
	switch n := n.(type) {
	case *ast.StringNode:
		if len(n.Value) > c.lim.MaxString {
			c.errs = append(c.errs, locError{loc: n.Location(),
				msg: fmt.Sprintf("string literal of %d bytes, more than the limit of %d (max_string)", len(n.Value), c.lim.MaxString)})
		}
	case *ast.ArrayNode:
		if len(n.Nodes) > c.lim.MaxArray {
			c.errs = append(c.errs, locError{loc: n.Location(),
				msg: fmt.Sprintf("array of %d items, more than the limit of %d (max_array)", len(n.Nodes), c.lim.MaxArray)})
		}
	case *ast.BinaryNode:
		if n.Operator == ".." && !inRHS {
			if lo, hi, ok := constRange(n); ok && hi-lo+1 > int64(c.lim.MaxRange) {
				c.errs = append(c.errs, locError{loc: n.Location(),
					msg: fmt.Sprintf("range %d..%d has %d items, more than the limit of %d (max_range)", lo, hi, hi-lo+1, c.lim.MaxRange)})
			}
		}
		c.walk(n.Left, depth+1, false)
		c.walk(n.Right, depth+1, n.Operator == "in")
		return
	}
	forChildren(n, func(ch ast.Node) { c.walk(ch, depth+1, false) })
}

// forChildren calls fn on each direct child of n.
func forChildren(n ast.Node, fn func(ast.Node)) {
	switch n := n.(type) {
	case *ast.UnaryNode:
		fn(n.Node)
	case *ast.BinaryNode:
		fn(n.Left)
		fn(n.Right)
	case *ast.ChainNode:
		fn(n.Node)
	case *ast.MemberNode:
		fn(n.Node)
		fn(n.Property)
	case *ast.SliceNode:
		fn(n.Node)
		if n.From != nil {
			fn(n.From)
		}
		if n.To != nil {
			fn(n.To)
		}
	case *ast.CallNode:
		fn(n.Callee)
		for _, a := range n.Arguments {
			fn(a)
		}
	case *ast.BuiltinNode:
		for _, a := range n.Arguments {
			fn(a)
		}
	case *ast.PredicateNode:
		fn(n.Node)
	case *ast.VariableDeclaratorNode:
		fn(n.Value)
		fn(n.Expr)
	case *ast.SequenceNode:
		for _, x := range n.Nodes {
			fn(x)
		}
	case *ast.ConditionalNode:
		fn(n.Cond)
		fn(n.Exp1)
		fn(n.Exp2)
	case *ast.ArrayNode:
		for _, x := range n.Nodes {
			fn(x)
		}
	case *ast.MapNode:
		for _, p := range n.Pairs {
			fn(p)
		}
	case *ast.PairNode:
		fn(n.Key)
		fn(n.Value)
	}
}

// constInt returns the value of an integer literal, negated or not.
func constIntNode(n ast.Node) (int64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return int64(n.Value), true
	case *ast.UnaryNode:
		if x, ok := constIntNode(n.Node); ok && n.Operator == "-" {
			return -x, true
		}
	}
	return 0, false
}

// constRange returns the bounds of a range whose bounds are literals.
func constRange(n *ast.BinaryNode) (lo, hi int64, ok bool) {
	lo, ok1 := constIntNode(n.Left)
	hi, ok2 := constIntNode(n.Right)
	return lo, hi, ok1 && ok2
}

// The cost model. A condition's cost estimates the work of one evaluation
// in the worst case, in units of about one node evaluated: every node costs
// 1, a predicate (any, all, filter, map, count, ...) costs its body's cost
// times the items of its collection, a regular expression a fixed amount
// more (much more when the pattern comes from a field and is compiled for
// every flow), a membership test on a list 1 when it is hashed and the
// list's length when it is scanned.
const (
	costRegexp        = 50   // matching a constant pattern
	costRegexpCompile = 500  // compiling a pattern from a field, per flow
	fieldListLen      = 64   // items assumed in a list-valued field (src_lists)
	unknownLen        = 256  // items assumed in a collection of unknown size
	maxCostValue      = 1e15 // costs saturate here
	repeatMax         = 1e6  // expr's own cap on repeat's count
	costPerStringByte = 1.0 / 64
)

// conditionCost estimates the worst-case cost of evaluating root once.
// native tells whether it runs as compiled closures (which hash every
// constant set) or on the expr VM (which scans named lists).
func conditionCost(root ast.Node, native bool, lim Limits) int64 {
	c := coster{native: native, lim: lim}
	v := c.cost(root)
	if v > maxCostValue {
		v = maxCostValue
	}
	return int64(math.Ceil(v))
}

type coster struct {
	native bool
	lim    Limits
}

func (c coster) cost(n ast.Node) float64 {
	if n == nil {
		return 0
	}
	switch n := n.(type) {
	case *ast.BinaryNode:
		v := 1 + c.cost(n.Left)
		switch n.Operator {
		case "in":
			if r, ok := n.Right.(*ast.BinaryNode); ok && r.Operator == ".." {
				if c.native || boundsCheckedByVM(n.Left, r) {
					return v + c.cost(r.Left) + c.cost(r.Right) // a bounds check
				}
				// The VM builds the range and scans it, for every flow.
				return v + c.cost(r) + c.length(r)
			}
			return v + c.cost(n.Right) + c.scan(n.Right)
		case "..":
			return v + c.cost(n.Right) + c.length(n)
		case "matches":
			if _, ok := n.Right.(*ast.StringNode); ok {
				return v + 1 + costRegexp
			}
			return v + c.cost(n.Right) + costRegexpCompile
		}
		return v + c.cost(n.Right)
	case *ast.BuiltinNode:
		return c.builtin(n)
	case *ast.ConditionalNode:
		return 1 + c.cost(n.Cond) + math.Max(c.cost(n.Exp1), c.cost(n.Exp2))
	}
	v := 1.0
	forChildren(n, func(ch ast.Node) { v += c.cost(ch) })
	return v
}

// scan is the extra cost of "x in coll" beyond evaluating coll.
func (c coster) scan(coll ast.Node) float64 {
	switch coll := coll.(type) {
	case *ast.ConstantNode:
		if _, ok := coll.Value.(*AddrSet); ok {
			return 1
		}
		if c.native {
			return 1 // hashed once at load
		}
		return c.length(coll)
	case *ast.ArrayNode:
		if c.native {
			return 1
		}
		for _, e := range coll.Nodes {
			switch e.(type) {
			case *ast.IntegerNode, *ast.StringNode:
			default:
				return c.length(coll) // scanned
			}
		}
		return 1 // expr's optimizer hashes an array of literals
	}
	return c.length(coll)
}

// boundsCheckedByVM reports whether expr's optimizer turns "x in lo..hi"
// into two comparisons: only for an int x and literal bounds. Otherwise
// the VM builds the range for every evaluation (a uint16 port in
// 1..65535 builds 65,535 items).
func boundsCheckedByVM(x ast.Node, r *ast.BinaryNode) bool {
	t := x.Type()
	if t == nil || t.Kind() != reflect.Int {
		return false
	}
	_, lo := r.Left.(*ast.IntegerNode)
	_, hi := r.Right.(*ast.IntegerNode)
	return lo && hi
}

// length estimates the items of a collection.
func (c coster) length(n ast.Node) float64 {
	switch n := n.(type) {
	case *ast.ArrayNode:
		return float64(len(n.Nodes))
	case *ast.ConstantNode:
		if s, ok := n.Value.(*AddrSet); ok {
			return float64(len(s.v4) + len(s.v6))
		}
		if v := reflect.ValueOf(n.Value); v.Kind() == reflect.Slice {
			return float64(v.Len())
		}
		return 1
	case *ast.IdentifierNode:
		return fieldListLen
	case *ast.BinaryNode:
		if n.Operator == ".." {
			if lo, hi, ok := constRange(n); ok {
				return math.Max(float64(hi-lo+1), 0)
			}
			return float64(c.lim.MaxRange) // checked by expr's memory budget at run time
		}
	case *ast.BuiltinNode:
		switch n.Name {
		case "filter", "map", "sortBy", "sort", "reverse", "uniq", "take", "flatten", "concat":
			if len(n.Arguments) > 0 {
				return c.length(n.Arguments[0])
			}
		}
	}
	return unknownLen
}

// builtin costs a call to an expr built-in.
func (c coster) builtin(n *ast.BuiltinNode) float64 {
	v := 1.0
	for _, a := range n.Arguments {
		if p, ok := a.(*ast.PredicateNode); ok {
			v += c.length(n.Arguments[0]) * (1 + c.cost(p.Node))
			continue
		}
		v += c.cost(a)
	}
	switch n.Name {
	case "len", "abs", "ceil", "floor", "round", "int", "float", "type", "first", "last", "get", "bitnot":
	case "repeat":
		size := float64(c.lim.MaxString) * repeatMax
		if len(n.Arguments) == 2 {
			if s, ok := n.Arguments[0].(*ast.StringNode); ok {
				size = float64(len(s.Value)) * repeatMax
				if k, ok := constIntNode(n.Arguments[1]); ok {
					size = float64(len(s.Value)) * float64(k)
				}
			}
		}
		v += size * costPerStringByte
	default:
		if len(n.Arguments) > 0 && isCollection(n.Arguments[0]) {
			v += c.length(n.Arguments[0])
		}
	}
	return v
}

func isCollection(n ast.Node) bool {
	t := n.Type()
	if t == nil {
		return false
	}
	k := t.Kind()
	return k == reflect.Slice || k == reflect.Array || k == reflect.Map
}

// countNodes counts the nodes of a tree.
func countNodes(root ast.Node) int {
	n := 0
	var walk func(ast.Node)
	walk = func(x ast.Node) {
		if x == nil {
			return
		}
		n++
		forChildren(x, walk)
	}
	walk(root)
	return n
}
