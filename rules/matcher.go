package rules

// Matcher evaluates the conditions of a list of rules on one flow at a
// time, computing each sub-expression that several conditions share (a
// macro such as inbound, `src_port in amplification_ports`, a whole where
// that two rules repeat) at most once per flow.
//
// Mask runs all the rules at once through a program of their tests
// (maskprog.go): rules that start alike share their first tests, and the
// common leaves are tested in the program's loop. A test that is not such
// a leaf calls its closure. The closure compiler records, for each node of
// a native condition, an identity interned by structure (the operator and
// its operands' own identities; a named list by the list itself) and a
// rough cost; NewMatcher counts the nodes the program's tests call and
// gives a memo slot to each one used more than once and costly enough to be
// worth a lookup, rebuilding the and/or/not nodes above those slots so they
// go through the memo. Evaluation stays lazy and in the same order as
// Rule.Match, so short-circuits are kept; conditions on the expr VM (the
// only ones that can fail at run time) are never shared, so each rule
// counts its own errors as before.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/expr-lang/expr/ast"

	"github.com/flowguard/flowguard/flow"
)

type bop uint8

const (
	bLeaf bop = iota
	bAnd
	bOr
	bNot
)

// bnode is the boolean structure of a native condition: and, or, not over
// leaves (comparisons, memberships, calls, bool fields). fn evaluates the
// whole node as compiled.
type bnode struct {
	id   uint64
	cost int32
	op   bop
	x, y *bnode
	fn   boolFn
	leaf *leaf // a leaf Mask's program runs itself, or nil
}

// nodeInfo is what the closure compiler records of a compiled node.
type nodeInfo struct {
	id   uint64
	cost int32
	bn   *bnode // bool-valued nodes
}

// lastExprID numbers interned sub-expressions across loads, so that rules
// of different loads never share an identity.
var lastExprID atomic.Uint64

func (cc *closureCompiler) intern(key string) uint64 {
	if id, ok := cc.keys[key]; ok {
		return id
	}
	id := lastExprID.Add(1)
	cc.keys[key] = id
	return id
}

// opName folds expr's word operators into their symbols.
func opName(op string) string {
	switch op {
	case "and":
		return "&&"
	case "or":
		return "||"
	case "not":
		return "!"
	}
	return op
}

// record interns n, compiled as v: its key names its kind, operator and
// operands' identities, so that two nodes with one key compute the same
// value on every flow.
func (cc *closureCompiler) record(n ast.Node, v val) {
	unknown := false // an operand not recorded: n shares nothing
	sub := func(ns ...ast.Node) (string, int32) {
		var b strings.Builder
		var c int32
		for _, x := range ns {
			inf, ok := cc.info[x]
			unknown = unknown || !ok
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(inf.id, 10))
			c += inf.cost
		}
		return b.String(), c
	}
	var (
		key  string
		cost int32
	)
	switch n := n.(type) {
	case *ast.BoolNode:
		key = "b:" + strconv.FormatBool(n.Value)
	case *ast.IntegerNode:
		key = "i:" + strconv.Itoa(n.Value)
	case *ast.FloatNode:
		key = "f:" + strconv.FormatUint(math.Float64bits(n.Value), 16)
	case *ast.StringNode:
		key = "s:" + strconv.Quote(n.Value)
	case *ast.IdentifierNode:
		key, cost = "id:"+n.Value, 1
	case *ast.ConstantNode:
		key = constKey(n.Value)
	case *ast.ArrayNode:
		// compileArray reads its items without compiling them.
		var b strings.Builder
		b.WriteString("[")
		for _, e := range n.Nodes {
			switch e := e.(type) {
			case *ast.IntegerNode:
				b.WriteString(":i:" + strconv.Itoa(e.Value))
			case *ast.StringNode:
				b.WriteString(":s:" + strconv.Quote(e.Value))
			default:
				unknown = true
			}
		}
		key = b.String()
	case *ast.UnaryNode:
		key, cost = sub(n.Node)
		key, cost = "u:"+opName(n.Operator)+key, cost+1
	case *ast.BinaryNode:
		key, cost = sub(n.Left, n.Right)
		key, cost = "o:"+opName(n.Operator)+key, cost+1
		switch n.Operator {
		case "in":
			cost += setCost(n.Right)
		case "matches":
			cost += 10
		case "contains", "startsWith", "endsWith":
			cost += 2
		}
	case *ast.CallNode:
		name := ""
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			name = id.Value
		}
		key, cost = sub(n.Arguments...)
		key, cost = "c:"+name+key, cost+3
	case *ast.BuiltinNode:
		key, cost = sub(n.Arguments...)
		key, cost = "n:"+n.Name+key, cost+1
	case *ast.ConditionalNode:
		key, cost = sub(n.Cond, n.Exp1, n.Exp2)
		key, cost = "?"+key, cost+1
	}
	if key == "" || unknown {
		key = fmt.Sprintf("node:%p", n) // unknown to record: shared with nothing
	}
	inf := nodeInfo{id: cc.intern(key), cost: cost}
	if v.k == kBool {
		bn := &bnode{id: inf.id, cost: cost, fn: v.b, leaf: v.leaf}
		switch n := n.(type) {
		case *ast.BinaryNode:
			switch opName(n.Operator) {
			case "&&":
				bn.op = bAnd
			case "||":
				bn.op = bOr
			}
			bn.x, bn.y = cc.info[n.Left].bn, cc.info[n.Right].bn
		case *ast.UnaryNode:
			if opName(n.Operator) == "!" {
				bn.op = bNot
				bn.x = cc.info[n.Node].bn
			}
		}
		if bn.op == bLeaf || bn.x == nil || bn.op != bNot && bn.y == nil {
			bn.op, bn.x, bn.y = bLeaf, nil, nil
		}
		inf.bn = bn
	}
	cc.info[n] = inf
}

// constKey names a list or constant: a list by its identity (the expander
// gives every reference to a list the same value).
func constKey(c any) string {
	switch c := c.(type) {
	case *AddrSet:
		return fmt.Sprintf("A:%p", c)
	case []int:
		if len(c) == 0 {
			return "I:"
		}
		return fmt.Sprintf("I:%p:%d", &c[0], len(c))
	case []string:
		if len(c) == 0 {
			return "S:"
		}
		return fmt.Sprintf("S:%p:%d", &c[0], len(c))
	case bool:
		return "b:" + strconv.FormatBool(c)
	case int:
		return "i:" + strconv.Itoa(c)
	case float64:
		return "f:" + strconv.FormatUint(math.Float64bits(c), 16)
	case string:
		return "s:" + strconv.Quote(c)
	}
	return ""
}

// setCost is the extra cost of a membership test in n.
func setCost(n ast.Node) int32 {
	switch c := n.(type) {
	case *ast.ConstantNode:
		switch v := c.Value.(type) {
		case *AddrSet:
			return 3
		case []int:
			return int32(min(len(v)/4, 3))
		case []string:
			return int32(min(len(v)/2, 3))
		}
	case *ast.ArrayNode:
		return int32(min(len(c.Nodes)/4, 3))
	}
	return 1
}

// memoCost is the least cost of a shared node that gets a memo slot: a
// memo lookup costs about as much as comparing a field with a constant.
// On the bundled pack (BenchmarkMatchPack under callgrind) 3 to 5 do alike;
// 2 memoizes what is cheaper to recompute, 8 recomputes inbound.
const memoCost = 4

// Matcher evaluates the conditions of a fixed list of rules on one flow at
// a time (Mask), each shared sub-expression at most once per flow (see the
// top of this file). It does not allocate. It is not safe for concurrent
// use: give each goroutine its own.
type Matcher struct {
	cur  uint64   // the current flow's generation (from 1) << 1
	memo []uint64 // per slot: generation << 1 | value, valid when it is cur's
	f    *flow.Flow
	prog []step // Mask's (maskprog.go)
}

// mnode is a condition or sub-expression as the matcher runs it: fn,
// through the memo slot memo when it has one.
type mnode struct {
	memo *uint64
	fn   boolFn
}

// NewMatcher builds a matcher of rs, in that order. A rule made by the
// loader is evaluated from its Where and Exceptions; any other rule by its
// Match function (none: it matches every flow).
func NewMatcher(rs []*Rule) *Matcher {
	m := &Matcher{prog: program(rs)}
	b := &matcherBuilder{m: m, count: map[uint64]int{}, slots: map[uint64]*uint64{}, shares: map[*bnode]bool{}}
	for i := range m.prog {
		s := &m.prog[i]
		switch {
		case s.bn != nil && s.bn.leaf != nil: // run in the program's loop
			s.leaf = *s.bn.leaf
			s.kind, s.want, s.bn = s.leaf.kind, s.want != s.leaf.neg, nil
		case s.bn != nil:
			countNode(b.count, s.bn)
		}
	}
	n := 0 // at most one slot per node used twice
	for _, c := range b.count {
		if c >= 2 {
			n++
		}
	}
	m.memo = make([]uint64, n)
	for i := range m.prog {
		if s := &m.prog[i]; s.bn != nil {
			s.n = b.node(s.bn)
		}
	}
	m.memo = m.memo[:b.used]
	return m
}

// Mask sets, in mask, the bit of each rule that counts f (bit i%64 of
// mask[i/64] for the i-th rule): its where holds and none of its
// exceptions does, as rules[i].Match says. It runs the rules' tests grouped
// by the tests they start with (maskprog.go): each rule evaluates what its
// Match would, in the same order, but not the rules in the same order.
// mask must hold a bit per rule; bits of rules that do not count f are left
// as they are.
func (m *Matcher) Mask(f *flow.Flow, mask []uint64) {
	m.f = f
	m.cur += 2
	m.run(f, mask)
}

// Slots returns the number of memo slots: the sub-expressions shared.
func (m *Matcher) Slots() int { return len(m.memo) }

// memoed runs n, which has a memo slot; the memo hit inlines.
func (m *Matcher) memoed(n *mnode) bool {
	if e := *n.memo; e^m.cur <= 1 {
		return e != m.cur
	}
	return m.fill(n)
}

func (m *Matcher) fill(n *mnode) bool {
	v := n.fn(m.f)
	e := m.cur
	if v {
		e |= 1
	}
	*n.memo = e
	return v
}

type matcherBuilder struct {
	m      *Matcher
	count  map[uint64]int
	used   int // memo slots given
	slots  map[uint64]*uint64
	shares map[*bnode]bool
}

// countNode counts the uses of n and, on its first, of its operands: an
// operand of a node used twice is still used once.
func countNode(count map[uint64]int, n *bnode) {
	count[n.id]++
	if count[n.id] > 1 {
		return
	}
	if n.x != nil {
		countNode(count, n.x)
	}
	if n.y != nil {
		countNode(count, n.y)
	}
}

func (b *matcherBuilder) memoized(n *bnode) bool {
	return b.count[n.id] >= 2 && n.cost >= memoCost
}

// sharing reports whether n or a node under it is memoized.
func (b *matcherBuilder) sharing(n *bnode) bool {
	if n == nil {
		return false
	}
	s, ok := b.shares[n]
	if !ok {
		s = b.memoized(n) || b.sharing(n.x) || b.sharing(n.y)
		b.shares[n] = s
	}
	return s
}

func (b *matcherBuilder) node(n *bnode) mnode {
	fn := n.fn
	if n.op != bLeaf && (b.sharing(n.x) || b.sharing(n.y)) {
		x, y := b.node(n.x), mnode{}
		if n.y != nil {
			y = b.node(n.y)
		}
		fn = b.join(n.op, x, y)
	}
	if !b.memoized(n) {
		return mnode{fn: fn}
	}
	slot, ok := b.slots[n.id]
	if !ok {
		slot = b.slot()
		b.slots[n.id] = slot
	}
	return mnode{memo: slot, fn: fn}
}

// join builds x op y (bNot: !x), calling plain operands directly and
// memoized ones through the memo.
func (b *matcherBuilder) join(op bop, x, y mnode) boolFn {
	m, xf, yf := b.m, x.fn, y.fn
	xm, ym := x.memo != nil, y.memo != nil
	switch {
	case op == bNot && xm:
		return func(f *flow.Flow) bool { return !m.memoed(&x) }
	case op == bNot:
		return func(f *flow.Flow) bool { return !xf(f) }
	case op == bAnd && xm && ym:
		return func(f *flow.Flow) bool { return m.memoed(&x) && m.memoed(&y) }
	case op == bAnd && xm:
		return func(f *flow.Flow) bool { return m.memoed(&x) && yf(f) }
	case op == bAnd && ym:
		return func(f *flow.Flow) bool { return xf(f) && m.memoed(&y) }
	case op == bAnd:
		return func(f *flow.Flow) bool { return xf(f) && yf(f) }
	case xm && ym:
		return func(f *flow.Flow) bool { return m.memoed(&x) || m.memoed(&y) }
	case xm:
		return func(f *flow.Flow) bool { return m.memoed(&x) || yf(f) }
	case ym:
		return func(f *flow.Flow) bool { return xf(f) || m.memoed(&y) }
	}
	return func(f *flow.Flow) bool { return xf(f) || yf(f) }
}

func (b *matcherBuilder) slot() *uint64 {
	b.used++
	return &b.m.memo[b.used-1]
}
