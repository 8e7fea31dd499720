package rules

// The closure compiler turns a checked expr AST into typed Go closures over
// *flow.Flow, so that evaluating a condition neither boxes values nor
// allocates. It follows expr's semantics: integers of every width compute
// as int (int64 here), mixing with a float computes in float64, "/" always
// yields a float. Anything it does not know returns errUnsupported and the
// condition runs on the expr VM instead.

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"github.com/flowguard/flowguard/flow"
)

var errUnsupported = errors.New("not supported by the closure compiler")

// loadError is a definite error in the condition (found while compiling
// closures), as opposed to errUnsupported.
type loadError struct {
	loc file.Location
	msg string
}

func (e *loadError) Error() string { return e.msg }

type kind uint8

const (
	kBool kind = iota + 1
	kInt
	kFloat
	kString
	kAddr
	kStrList // a list-valued field (src_lists)
	kIntSet  // constant set of integers (number list, [22, 23])
	kStrSet  // constant set of strings
	kAddrSet // constant CIDR list
	kRange   // constant integer range a..b
)

type (
	boolFn  = func(*flow.Flow) bool
	intFn   = func(*flow.Flow) int64
	floatFn = func(*flow.Flow) float64
	strFn   = func(*flow.Flow) string
	addrFn  = func(*flow.Flow) netip.Addr
	listFn  = func(*flow.Flow) []string
)

// val is a compiled sub-expression: the closure for its kind, and for
// constants the value itself so operators can specialise.
type val struct {
	k kind
	b boolFn
	i intFn
	f floatFn
	s strFn
	a addrFn
	l listFn

	// unsigned marks a kInt read from an unsigned field: expr converts
	// those to float64 from the unsigned value.
	unsigned bool

	isConst bool
	cb      bool
	ci      int64
	cf      float64
	cs      string
	// at locates a field read directly (fieldat.go), nil otherwise;
	// lenOf, the string or list field whose length a kInt is.
	at, lenOf *fieldAt
	// leaf is a kBool's test as Mask's program runs it, if it can.
	leaf *leaf

	ints   *memberSet[int64]  // kIntSet
	strs   *memberSet[string] // kStrSet
	addrs  *AddrSet
	lo, hi int64 // kRange
}

// closureCompiler compiles the conditions of one load. It holds the
// membership sets built from named lists, so that every condition naming
// a list shares one set instead of building its own.
type closureCompiler struct {
	ints map[*int]*memberSet[int64]
	strs map[*string]*memberSet[string]

	// keys interns sub-expressions (see exprKey); info holds what the
	// matcher needs of each node of the condition being compiled.
	keys map[string]uint64
	info map[ast.Node]nodeInfo
}

func newClosureCompiler() *closureCompiler {
	return &closureCompiler{ints: map[*int]*memberSet[int64]{}, strs: map[*string]*memberSet[string]{},
		keys: map[string]uint64{}, info: map[ast.Node]nodeInfo{}}
}

func constBool(x bool) val {
	return val{k: kBool, isConst: true, cb: x, b: func(*flow.Flow) bool { return x }}
}
func constInt(x int64) val {
	return val{k: kInt, isConst: true, ci: x, i: func(*flow.Flow) int64 { return x }}
}
func constFloat(x float64) val {
	return val{k: kFloat, isConst: true, cf: x, f: func(*flow.Flow) float64 { return x }}
}
func constString(x string) val {
	return val{k: kString, isConst: true, cs: x, s: func(*flow.Flow) string { return x }}
}

// asFloat returns v's value as float64 (v is kInt or kFloat).
func (v val) asFloat() floatFn {
	if v.k == kFloat {
		return v.f
	}
	i := v.i
	if v.unsigned {
		return func(f *flow.Flow) float64 { return float64(uint64(i(f))) }
	}
	return func(f *flow.Flow) float64 { return float64(i(f)) }
}

func (v val) numeric() bool { return v.k == kInt || v.k == kFloat }

// compileNode compiles n and records its identity and cost (matcher.go).
func (cc *closureCompiler) compileNode(n ast.Node) (val, error) {
	v, err := cc.compileNode1(n)
	if err != nil {
		return v, err
	}
	cc.record(n, v)
	return v, nil
}

func (cc *closureCompiler) compileNode1(n ast.Node) (val, error) {
	switch n := n.(type) {
	case *ast.BoolNode:
		return constBool(n.Value), nil
	case *ast.IntegerNode:
		return constInt(int64(n.Value)), nil
	case *ast.FloatNode:
		return constFloat(n.Value), nil
	case *ast.StringNode:
		return constString(n.Value), nil
	case *ast.IdentifierNode:
		return compileField(n.Value)
	case *ast.ConstantNode:
		return cc.compileConstant(n.Value)
	case *ast.ArrayNode:
		return cc.compileArray(n)
	case *ast.UnaryNode:
		return cc.compileUnary(n)
	case *ast.BinaryNode:
		return cc.compileBinary(n)
	case *ast.CallNode:
		return cc.compileCall(n)
	case *ast.BuiltinNode:
		return cc.compileBuiltin(n)
	case *ast.ConditionalNode:
		return cc.compileConditional(n)
	}
	return val{}, errUnsupported
}

func compileField(name string) (val, error) {
	fd, ok := flow.Lookup(name)
	if !ok {
		return val{}, errUnsupported
	}
	a, direct := fieldsAt[name]
	switch fd.Kind {
	case flow.KindUint:
		if direct && a.isUint() {
			return val{k: kInt, unsigned: true, i: a.intFn(), at: &a}, nil
		}
		get := fd.Uint
		return val{k: kInt, unsigned: true, i: func(f *flow.Flow) int64 { return int64(get(f)) }}, nil
	case flow.KindString:
		if direct && a.kind == reflect.String {
			return val{k: kString, s: a.strFn(), at: &a}, nil
		}
		return val{k: kString, s: fd.String}, nil
	case flow.KindBool:
		if direct && a.kind == reflect.Bool {
			return val{k: kBool, b: a.boolFn(), at: &a, leaf: a.boolLeaf()}, nil
		}
		return val{k: kBool, b: fd.Bool}, nil
	case flow.KindAddr:
		if direct && a.kind == reflect.Struct {
			return val{k: kAddr, a: a.addrFn(), at: &a}, nil
		}
		return val{k: kAddr, a: fd.Addr}, nil
	case flow.KindList:
		if direct && a.kind == reflect.Slice {
			return val{k: kStrList, l: a.listFn(), at: &a}, nil
		}
		return val{k: kStrList, l: fd.List}, nil
	}
	return val{}, errUnsupported // prefixes, times
}

func (cc *closureCompiler) compileConstant(c any) (val, error) {
	switch c := c.(type) {
	case *AddrSet:
		return val{k: kAddrSet, isConst: true, addrs: c}, nil
	case []int:
		// A named list: the expander hands every reference the same
		// slice, which keys its shared set.
		if len(c) == 0 {
			return val{k: kIntSet, isConst: true, ints: newMemberSet[int64](nil)}, nil
		}
		set, ok := cc.ints[&c[0]]
		if !ok {
			ints := make([]int64, len(c))
			for i, x := range c {
				ints[i] = int64(x)
			}
			set = newIntSet(ints)
			cc.ints[&c[0]] = set
		}
		return val{k: kIntSet, isConst: true, ints: set}, nil
	case []string:
		if len(c) == 0 {
			return val{k: kStrSet, isConst: true, strs: newMemberSet[string](nil)}, nil
		}
		set, ok := cc.strs[&c[0]]
		if !ok {
			set = newMemberSet(c)
			cc.strs[&c[0]] = set
		}
		return val{k: kStrSet, isConst: true, strs: set}, nil
	case bool:
		return constBool(c), nil
	case int:
		return constInt(int64(c)), nil
	case float64:
		return constFloat(c), nil
	case string:
		return constString(c), nil
	}
	return val{}, errUnsupported
}

func (cc *closureCompiler) compileArray(n *ast.ArrayNode) (val, error) {
	var ints []int64
	var strs []string
	for _, e := range n.Nodes {
		switch e := e.(type) {
		case *ast.IntegerNode:
			ints = append(ints, int64(e.Value))
		case *ast.StringNode:
			strs = append(strs, e.Value)
		default:
			return val{}, errUnsupported
		}
	}
	switch {
	case len(strs) == 0:
		return val{k: kIntSet, isConst: true, ints: newIntSet(ints)}, nil
	case len(ints) == 0:
		return val{k: kStrSet, isConst: true, strs: newMemberSet(strs)}, nil
	}
	return val{}, errUnsupported
}

func (cc *closureCompiler) compileUnary(n *ast.UnaryNode) (val, error) {
	x, err := cc.compileNode(n.Node)
	if err != nil {
		return val{}, err
	}
	switch n.Operator {
	case "not", "!":
		if x.k != kBool {
			return val{}, errUnsupported
		}
		if x.at != nil {
			off := x.at.off
			return val{k: kBool, b: func(f *flow.Flow) bool { return !*at[bool](f, off) }}, nil
		}
		b := x.b
		return val{k: kBool, b: func(f *flow.Flow) bool { return !b(f) }}, nil
	case "-", "+":
		// expr negates in the operand's own type: only int and float64
		// behave like ours (a uint16 field would wrap).
		switch n.Node.Type().Kind() {
		case reflect.Int, reflect.Float64:
		default:
			return val{}, errUnsupported
		}
		if n.Operator == "+" {
			return x, nil
		}
		switch x.k {
		case kInt:
			if x.isConst {
				return constInt(-x.ci), nil
			}
			i := x.i
			return val{k: kInt, i: func(f *flow.Flow) int64 { return -i(f) }}, nil
		case kFloat:
			if x.isConst {
				return constFloat(-x.cf), nil
			}
			g := x.f
			return val{k: kFloat, f: func(f *flow.Flow) float64 { return -g(f) }}, nil
		}
	}
	return val{}, errUnsupported
}

func (cc *closureCompiler) compileBinary(n *ast.BinaryNode) (val, error) {
	if n.Operator == "in" {
		return cc.compileIn(n)
	}
	l, err := cc.compileNode(n.Left)
	if err != nil {
		return val{}, err
	}
	r, err := cc.compileNode(n.Right)
	if err != nil {
		return val{}, err
	}
	switch n.Operator {
	case "and", "&&", "or", "||":
		if l.k != kBool || r.k != kBool {
			return val{}, errUnsupported
		}
		lb, rb := l.b, r.b
		if n.Operator == "and" || n.Operator == "&&" {
			return val{k: kBool, b: func(f *flow.Flow) bool { return lb(f) && rb(f) }}, nil
		}
		return val{k: kBool, b: func(f *flow.Flow) bool { return lb(f) || rb(f) }}, nil
	case "==", "!=", "<", "<=", ">", ">=":
		return compileCompare(n.Operator, l, r)
	case "+", "-", "*", "/", "%", "**", "^":
		return compileArith(n, l, r)
	case "contains", "startsWith", "endsWith":
		if l.k != kString || r.k != kString {
			return val{}, errUnsupported
		}
		ls, rs := l.s, r.s
		var op func(string, string) bool
		switch n.Operator {
		case "contains":
			op = strings.Contains
		case "startsWith":
			op = strings.HasPrefix
		default:
			op = strings.HasSuffix
		}
		if r.isConst {
			c := r.cs
			return val{k: kBool, b: func(f *flow.Flow) bool { return op(ls(f), c) }}, nil
		}
		return val{k: kBool, b: func(f *flow.Flow) bool { return op(ls(f), rs(f)) }}, nil
	case "matches":
		if l.k != kString || r.k != kString || !r.isConst {
			return val{}, errUnsupported
		}
		re, err := regexp.Compile(r.cs)
		if err != nil {
			return val{}, &loadError{n.Right.Location(), err.Error()}
		}
		ls := l.s
		return val{k: kBool, b: func(f *flow.Flow) bool { return re.MatchString(ls(f)) }}, nil
	case "..":
		if l.k == kInt && r.k == kInt && l.isConst && r.isConst {
			return val{k: kRange, isConst: true, lo: l.ci, hi: r.ci}, nil
		}
	}
	return val{}, errUnsupported
}

// flip mirrors a comparison so that a constant can move to the right.
var flip = map[string]string{"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

func compileCompare(op string, l, r val) (val, error) {
	if l.isConst && !r.isConst {
		l, r, op = r, l, flip[op]
	}
	switch {
	case l.k == kInt && r.k == kInt && l.at != nil && r.isConst:
		if b := l.at.cmpConst(op, r.ci); b != nil {
			return val{k: kBool, b: b, leaf: l.at.cmpLeaf(op, r.ci)}, nil
		}
		return val{}, errUnsupported
	case l.k == kInt && r.k == kInt && l.lenOf != nil && r.isConst:
		if b := l.lenOf.lenCmp(op, r.ci); b != nil {
			return val{k: kBool, b: b, leaf: l.lenOf.lenLeaf(op, r.ci)}, nil
		}
		return val{}, errUnsupported
	case l.k == kInt && r.k == kInt:
		return cmpOrdered(op, l.i, r.i, r.isConst, r.ci)
	case l.numeric() && r.numeric():
		c := r.cf
		if r.k == kInt {
			c = float64(r.ci)
		}
		return cmpOrdered(op, l.asFloat(), r.asFloat(), r.isConst, c)
	case l.k == kString && r.k == kString && l.at != nil && r.isConst:
		v, err := cmpOrdered(op, l.s, r.s, true, r.cs)
		v.leaf = l.at.eqLeaf(op, r.cs)
		return v, err
	case l.k == kString && r.k == kString:
		return cmpOrdered(op, l.s, r.s, r.isConst, r.cs)
	case l.k == kBool && r.k == kBool && (op == "==" || op == "!="):
		lb, rb := l.b, r.b
		ne := op == "!="
		return val{k: kBool, b: func(f *flow.Flow) bool { return (lb(f) == rb(f)) != ne }}, nil
	case l.k == kAddr && r.k == kAddr && (op == "==" || op == "!="):
		la, ra := l.a, r.a
		ne := op == "!="
		return val{k: kBool, b: func(f *flow.Flow) bool { return (la(f) == ra(f)) != ne }}, nil
	}
	return val{}, errUnsupported
}

// cmpOrdered builds a comparison of two closures of one ordered type,
// specialised for a constant right-hand side (the common "proto == 6").
func cmpOrdered[T int64 | float64 | string](op string, l, r func(*flow.Flow) T, rConst bool, c T) (val, error) {
	var b boolFn
	if rConst {
		switch op {
		case "==":
			b = func(f *flow.Flow) bool { return l(f) == c }
		case "!=":
			b = func(f *flow.Flow) bool { return l(f) != c }
		case "<":
			b = func(f *flow.Flow) bool { return l(f) < c }
		case "<=":
			b = func(f *flow.Flow) bool { return l(f) <= c }
		case ">":
			b = func(f *flow.Flow) bool { return l(f) > c }
		case ">=":
			b = func(f *flow.Flow) bool { return l(f) >= c }
		}
	} else {
		switch op {
		case "==":
			b = func(f *flow.Flow) bool { return l(f) == r(f) }
		case "!=":
			b = func(f *flow.Flow) bool { return l(f) != r(f) }
		case "<":
			b = func(f *flow.Flow) bool { return l(f) < r(f) }
		case "<=":
			b = func(f *flow.Flow) bool { return l(f) <= r(f) }
		case ">":
			b = func(f *flow.Flow) bool { return l(f) > r(f) }
		case ">=":
			b = func(f *flow.Flow) bool { return l(f) >= r(f) }
		}
	}
	if b == nil {
		return val{}, errUnsupported
	}
	return val{k: kBool, b: b}, nil
}

func compileArith(n *ast.BinaryNode, l, r val) (val, error) {
	if !l.numeric() || !r.numeric() {
		return val{}, errUnsupported // string concatenation allocates
	}
	op := n.Operator
	switch op {
	case "/":
		lf, rf := l.asFloat(), r.asFloat()
		return val{k: kFloat, f: func(f *flow.Flow) float64 { return lf(f) / rf(f) }}, nil
	case "**", "^":
		lf, rf := l.asFloat(), r.asFloat()
		return val{k: kFloat, f: func(f *flow.Flow) float64 { return math.Pow(lf(f), rf(f)) }}, nil
	case "%":
		if l.k != kInt || r.k != kInt || !r.isConst {
			return val{}, errUnsupported // a run-time zero divisor is expr's to report
		}
		if r.ci == 0 {
			return val{}, &loadError{n.Right.Location(), "integer modulo by zero"}
		}
		li, c := l.i, r.ci
		return val{k: kInt, i: func(f *flow.Flow) int64 { return li(f) % c }}, nil
	}
	if l.k == kInt && r.k == kInt {
		li, ri := l.i, r.i
		switch op {
		case "+":
			return val{k: kInt, i: func(f *flow.Flow) int64 { return li(f) + ri(f) }}, nil
		case "-":
			return val{k: kInt, i: func(f *flow.Flow) int64 { return li(f) - ri(f) }}, nil
		case "*":
			return val{k: kInt, i: func(f *flow.Flow) int64 { return li(f) * ri(f) }}, nil
		}
		return val{}, errUnsupported
	}
	lf, rf := l.asFloat(), r.asFloat()
	switch op {
	case "+":
		return val{k: kFloat, f: func(f *flow.Flow) float64 { return lf(f) + rf(f) }}, nil
	case "-":
		return val{k: kFloat, f: func(f *flow.Flow) float64 { return lf(f) - rf(f) }}, nil
	case "*":
		return val{k: kFloat, f: func(f *flow.Flow) float64 { return lf(f) * rf(f) }}, nil
	}
	return val{}, errUnsupported
}

func (cc *closureCompiler) compileIn(n *ast.BinaryNode) (val, error) {
	l, err := cc.compileNode(n.Left)
	if err != nil {
		return val{}, err
	}
	r, err := cc.compileNode(n.Right)
	if err != nil {
		return val{}, err
	}
	switch {
	case l.k == kInt && r.k == kIntSet && l.at != nil && r.ints.bits != nil:
		return val{k: kBool, b: l.at.inBits(r.ints), leaf: l.at.bitsLeaf(r.ints)}, nil
	case l.k == kInt && r.k == kIntSet:
		return val{k: kBool, b: intSetContains(l.i, r.ints)}, nil
	case l.k == kInt && r.k == kRange:
		li, lo, hi := l.i, r.lo, r.hi
		v := val{k: kBool, b: func(f *flow.Flow) bool { x := li(f); return x >= lo && x <= hi }}
		if l.at != nil {
			v.leaf = l.at.rangeLeaf(lo, hi, false)
		}
		return v, nil
	case l.k == kString && r.k == kStrSet && l.at != nil:
		v := val{k: kBool, b: l.at.inStrSet(r.strs)}
		if w, ok := packSet(r.strs); ok {
			v.leaf = l.at.wordsLeaf(w, false)
		}
		return v, nil
	case l.k == kString && r.k == kStrSet:
		return val{k: kBool, b: strSetContains(l.s, r.strs)}, nil
	case l.k == kString && r.k == kStrList:
		ls, rl := l.s, r.l
		return val{k: kBool, b: func(f *flow.Flow) bool {
			s := ls(f)
			for _, x := range rl(f) {
				if x == s {
					return true
				}
			}
			return false
		}}, nil
	case l.k == kAddr && r.k == kAddrSet && l.at != nil:
		return val{k: kBool, b: l.at.inAddrSet(r.addrs), leaf: l.at.addrLeaf(r.addrs)}, nil
	case l.k == kAddr && r.k == kAddrSet:
		la, set := l.a, r.addrs
		return val{k: kBool, b: func(f *flow.Flow) bool { return set.Contains(la(f)) }}, nil
	}
	return val{}, errUnsupported
}

// Small sets scan a slice (faster than hashing); larger ones use a map.
const smallSet = 8

// memberSet is a constant set of numbers or strings: a short slice, or a
// map once it has more than smallSet items. It is read-only once built,
// so conditions share it.
type memberSet[T comparable] struct {
	n     int // items as written, duplicates included (len() of the list)
	small []T
	m     map[T]struct{}
	// A set of integers spanning at most maxBits values is also a bitmap
	// of its items from lo.
	lo   int64
	bits []uint64
}

// maxBits bounds a set's bitmap (8 KiB): every port list fits.
const maxBits = 1 << 16

// newIntSet is newMemberSet with a bitmap when the items' span allows.
func newIntSet(items []int64) *memberSet[int64] {
	s := newMemberSet(items)
	if len(items) == 0 {
		return s
	}
	lo, hi := slices.Min(items), slices.Max(items)
	if hi-lo < 0 || hi-lo >= maxBits {
		return s // wide, or so wide it overflows
	}
	s.lo = lo
	s.bits = make([]uint64, (hi-lo)/64+1)
	for _, x := range items {
		s.bits[(x-lo)>>6] |= 1 << ((x - lo) & 63)
	}
	return s
}

func newMemberSet[T comparable](items []T) *memberSet[T] {
	s := &memberSet[T]{n: len(items)}
	if len(items) <= smallSet {
		s.small = items
		return s
	}
	s.m = make(map[T]struct{}, len(items))
	for _, e := range items {
		s.m[e] = struct{}{}
	}
	return s
}

func intSetContains(x intFn, set *memberSet[int64]) boolFn {
	if set.bits == nil {
		return setContains(x, set)
	}
	lo, bits := set.lo, set.bits
	n := uint64(len(bits)) * 64
	return func(f *flow.Flow) bool {
		v := uint64(x(f) - lo)
		return v < n && bits[v>>6]&(1<<(v&63)) != 0
	}
}

func strSetContains(x strFn, set *memberSet[string]) boolFn {
	if w, ok := packSet(set); ok {
		return func(f *flow.Flow) bool { return w.has(x(f)) }
	}
	return setContains(x, set)
}

// wordSet is a set of strings of one length n of at most 8 bytes, each
// packed in a word: a string of another length is out at once, one of
// length n is compared in a register.
type wordSet struct {
	n     int
	words []uint64
}

// packSet makes a wordSet of a small set whose items have one length.
func packSet(set *memberSet[string]) (*wordSet, bool) {
	if set.m != nil || len(set.small) == 0 {
		return nil, false
	}
	w := &wordSet{n: len(set.small[0])}
	for _, s := range set.small {
		if len(s) != w.n || w.n > 8 {
			return nil, false
		}
		w.words = append(w.words, packWord(s))
	}
	return w, true
}

func packWord(s string) uint64 {
	var x uint64
	for i := range len(s) {
		x = x<<8 | uint64(s[i])
	}
	return x
}

func (w *wordSet) has(s string) bool {
	if len(s) != w.n {
		return false
	}
	x := packWord(s)
	for _, e := range w.words {
		if e == x {
			return true
		}
	}
	return false
}

func setContains[T comparable](x func(*flow.Flow) T, set *memberSet[T]) boolFn {
	if set.m == nil {
		items := set.small
		return func(f *flow.Flow) bool {
			v := x(f)
			for _, e := range items {
				if e == v {
					return true
				}
			}
			return false
		}
	}
	m := set.m
	return func(f *flow.Flow) bool { _, ok := m[x(f)]; return ok }
}

func (cc *closureCompiler) compileCall(n *ast.CallNode) (val, error) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || len(n.Arguments) != 2 {
		return val{}, errUnsupported
	}
	a, err := cc.compileNode(n.Arguments[0])
	if err != nil {
		return val{}, err
	}
	b, err := cc.compileNode(n.Arguments[1])
	if err != nil {
		return val{}, err
	}
	switch id.Value {
	case fnAddrInList:
		if a.k == kAddr && b.k == kAddrSet && a.at != nil {
			return val{k: kBool, b: a.at.inAddrSet(b.addrs), leaf: a.at.addrLeaf(b.addrs)}, nil
		}
		if a.k == kAddr && b.k == kAddrSet {
			la, set := a.a, b.addrs
			return val{k: kBool, b: func(f *flow.Flow) bool { return set.Contains(la(f)) }}, nil
		}
	case fnInCIDR:
		if a.k == kAddr && b.k == kString && b.isConst {
			p, err := parseAddrOrPrefix(b.cs)
			if err != nil {
				return val{}, &loadError{n.Arguments[1].Location(), "in_cidr: " + err.Error()}
			}
			la := a.a
			return val{k: kBool, b: func(f *flow.Flow) bool { return prefixContains(p, la(f)) }}, nil
		}
	case fnAddrEq, fnAddrNe:
		if a.k == kString {
			a, b = b, a
		}
		if a.k == kAddr && b.k == kString && b.isConst {
			want, err := netip.ParseAddr(b.cs)
			if err != nil {
				return val{}, &loadError{n.Location(), fmt.Sprintf("%q is not an IP address", b.cs)}
			}
			la := a.a
			ne := id.Value == fnAddrNe
			return val{k: kBool, b: func(f *flow.Flow) bool { return addrEqual(la(f), want) != ne }}, nil
		}
	}
	return val{}, errUnsupported
}

func (cc *closureCompiler) compileBuiltin(n *ast.BuiltinNode) (val, error) {
	if n.Name != "len" || len(n.Arguments) != 1 {
		return val{}, errUnsupported
	}
	x, err := cc.compileNode(n.Arguments[0])
	if err != nil {
		return val{}, err
	}
	switch x.k {
	case kString:
		s := x.s
		return val{k: kInt, i: func(f *flow.Flow) int64 { return int64(len(s(f))) }, lenOf: x.at}, nil
	case kStrList:
		l := x.l
		return val{k: kInt, i: func(f *flow.Flow) int64 { return int64(len(l(f))) }, lenOf: x.at}, nil
	case kIntSet:
		return constInt(int64(x.ints.n)), nil
	case kStrSet:
		return constInt(int64(x.strs.n)), nil
	}
	return val{}, errUnsupported
}

// choose is the conditional operator over closures of one type.
func choose[T any](cond func(*flow.Flow) bool, x, y func(*flow.Flow) T) func(*flow.Flow) T {
	return func(f *flow.Flow) T {
		if cond(f) {
			return x(f)
		}
		return y(f)
	}
}

func (cc *closureCompiler) compileConditional(n *ast.ConditionalNode) (val, error) {
	c, err := cc.compileNode(n.Cond)
	if err != nil {
		return val{}, err
	}
	a, err := cc.compileNode(n.Exp1)
	if err != nil {
		return val{}, err
	}
	b, err := cc.compileNode(n.Exp2)
	if err != nil {
		return val{}, err
	}
	if c.k != kBool || a.k != b.k {
		return val{}, errUnsupported
	}
	cb := c.b
	switch a.k {
	case kBool:
		return val{k: kBool, b: choose(cb, a.b, b.b)}, nil
	case kInt:
		if a.unsigned != b.unsigned {
			return val{}, errUnsupported // the result's float conversion would vary by branch
		}
		return val{k: kInt, unsigned: a.unsigned, i: choose(cb, a.i, b.i)}, nil
	case kFloat:
		return val{k: kFloat, f: choose(cb, a.f, b.f)}, nil
	case kString:
		return val{k: kString, s: choose(cb, a.s, b.s)}, nil
	}
	return val{}, errUnsupported
}
