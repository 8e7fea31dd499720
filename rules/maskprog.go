package rules

// Mask runs a small program built from every rule's conditions at once
// instead of each rule's closure in turn. A rule counts a flow when a
// sequence of tests all hold: the conjuncts of its where (a && b && c
// split into a, b, c), then each exception's negation (split the same way
// through !(x || y) = !x && !y); a not is folded into the test's polarity,
// so `inbound` and `src_addr in internal_nets` are one test, wanted false
// and true. Rules are put in a trie by those tests: the rules that start
// with the same test share its evaluation, and when it fails none of them
// is looked at again; rules with the same tests set their bits from one
// evaluation.
//
// Each test is then compiled to jumps over its leaves (cond): an or tries
// its left side and jumps on when it holds, as || does. The leaves that
// read one field at its offset (a flag, a port against a constant, a range
// or a bitmap, an address against a CIDR list, a length, a short string)
// run inside the program's loop (leaf.go); any other leaf calls its
// closure, through a memo slot when the program tests it more than once.
//
// Each rule still evaluates exactly its own leaves, in its own order,
// stopping as soon as its result is known, as Rule.Match would: && and ||
// evaluate left to right and stop as soon as the result is known, and the
// split and the jumps keep both. Conditions on the expr VM and rules not
// made by the loader are tests of their own, shared with no other rule, so
// each rule counts its own errors. The program has a step per leaf of each
// distinct path of the trie, at most the leaves of all the rules'
// conditions (bounded by Limits), plus a set and a jump per trie node.

import (
	"net/netip"

	"github.com/flowguard/flowguard/flow"
)

type stepKind uint8

const (
	sTest stepKind = iota // evaluate n; on to the next step if it is want, else to
	sSet                  // set the bits of rule and more; on to the next step
	sJump                 // go to to
	// Tests of a leaf (leaf.go), as sTest: a bool field; an integer
	// field in a range; in a bitmap; an address field in a CIDR list; the
	// length of a string, of a list in a range; a string in a wordSet.
	sBool
	sRange
	sBits
	sAddr
	sLen
	sLenList
	sWords
)

// step is one instruction of Mask's program.
type step struct {
	kind stepKind
	want bool
	to   int32
	rule int32
	n    mnode
	bn   *bnode // a test on a native node: what n evaluates
	more []int32
	leaf // a leaf's test: what it reads
}

// conj is one test of a rule as Mask's program runs it: the native node bn,
// or (opaque) fn, holds when its value is want.
type conj struct {
	key  uint64 // bn's identity, or a fresh one for an opaque test
	want bool
	bn   *bnode
	fn   boolFn
}

// tnode is a node of the trie of rules by their tests: the rules whose
// tests end here, and the tests that follow, in order of first use.
type tnode struct {
	rules []int32
	kids  []*tkid
	index map[uint64]*tkid
}

// tkid is a test after a trie node, and the nodes after it when it holds
// (pos) and when it does not (neg).
type tkid struct {
	c        conj
	pos, neg *tnode
}

// split appends the tests of "n is want" to cs.
func split(cs []conj, n *bnode, want bool) []conj {
	for n.op == bNot {
		n, want = n.x, !want
	}
	if want && n.op == bAnd || !want && n.op == bOr {
		cs = split(cs, n.x, want)
		return split(cs, n.y, want)
	}
	return append(cs, conj{key: n.id, want: want, bn: n})
}

func opaque(fn boolFn, want bool) conj {
	return conj{key: lastExprID.Add(1), want: want, fn: fn}
}

// conjuncts returns the tests of r, in the order Rule.Match evaluates them.
func conjuncts(r *Rule) []conj {
	if !r.loaded {
		if r.Match == nil {
			return nil
		}
		return []conj{opaque(r.Match, true)}
	}
	var cs []conj
	add := func(c *Condition, want bool) {
		if c.tree == nil {
			cs = append(cs, opaque(c.eval, want))
			return
		}
		cs = split(cs, c.tree, want)
	}
	if r.Where != nil {
		add(r.Where, true)
	}
	for _, e := range r.Exceptions {
		add(e, false)
	}
	return cs
}

// insert adds rule i with tests cs under t.
func (t *tnode) insert(i int32, cs []conj) {
	for _, c := range cs {
		k, ok := t.index[c.key]
		if !ok {
			k = &tkid{c: c}
			if t.index == nil {
				t.index = map[uint64]*tkid{}
			}
			t.index[c.key] = k
			t.kids = append(t.kids, k)
		}
		next := &k.pos
		if !c.want {
			next = &k.neg
		}
		if *next == nil {
			*next = &tnode{}
		}
		t = *next
	}
	t.rules = append(t.rules, i)
}

// cond appends the steps that test whether n is want, as n's closure
// would evaluate it, in order and only as far as needed: they go on past
// their end when it is, and to the step patched into each index they add
// to fails when it is not. Only leaves are tested; and, or and not become
// the program's jumps.
func cond(prog []step, n *bnode, want bool, fails *[]int) []step {
	for n.op == bNot {
		n, want = n.x, !want
	}
	switch {
	case n.op == bAnd && want, n.op == bOr && !want: // both must be want
		prog = cond(prog, n.x, want, fails)
		return cond(prog, n.y, want, fails)
	case n.op == bAnd, n.op == bOr: // either will do: x is tried first
		var done []int
		prog = cond(prog, n.x, !want, &done)
		prog = cond(prog, n.y, want, fails)
		patch(prog, done, len(prog))
		return prog
	}
	*fails = append(*fails, len(prog))
	return append(prog, step{kind: sTest, want: want, bn: n})
}

func patch(prog []step, at []int, to int) {
	for _, i := range at {
		prog[i].to = int32(to)
	}
}

// emit appends t's program to prog.
func emit(prog []step, t *tnode) []step {
	if len(t.rules) > 0 {
		prog = append(prog, step{kind: sSet, rule: t.rules[0], more: t.rules[1:]})
	}
	for _, k := range t.kids {
		// Tested once, the test goes on to the rules that want it to
		// hold, or else to those that want it not to.
		var fails []int
		want := k.pos != nil
		if k.c.bn != nil {
			prog = cond(prog, k.c.bn, want, &fails)
		} else {
			fails = append(fails, len(prog))
			prog = append(prog, step{kind: sTest, want: want, n: mnode{fn: k.c.fn}})
		}
		if k.pos != nil {
			prog = emit(prog, k.pos)
		}
		if k.pos != nil && k.neg != nil {
			jump := len(prog)
			prog = append(prog, step{kind: sJump})
			patch(prog, fails, len(prog))
			prog = emit(prog, k.neg)
			prog[jump].to = int32(len(prog))
			continue
		}
		if k.neg != nil {
			prog = emit(prog, k.neg)
		}
		patch(prog, fails, len(prog))
	}
	return prog
}

// program builds Mask's program of rs; the closures of its tests on native
// nodes (bn) are made once the memo slots are known.
func program(rs []*Rule) []step {
	root := &tnode{}
	for i, r := range rs {
		root.insert(int32(i), conjuncts(r))
	}
	return emit(nil, root)
}

// run runs the program on the current flow.
func (m *Matcher) run(f *flow.Flow, mask []uint64) {
	prog := m.prog
	for pc := 0; pc < len(prog); {
		s := &prog[pc]
		var v bool
		switch s.kind {
		case sSet:
			mask[s.rule>>6] |= 1 << (s.rule & 63)
			for _, i := range s.more {
				mask[i>>6] |= 1 << (i & 63)
			}
			pc++
			continue
		case sJump:
			pc = int(s.to)
			continue
		case sTest:
			if s.n.memo != nil {
				v = m.memoed(&s.n)
			} else {
				v = s.n.fn(f)
			}
		case sBool:
			v = *at[bool](f, s.off)
		case sRange:
			v = uint64(uintAtWidth(f, s.off, s.width))-s.lo <= s.span
		case sBits:
			x := uint64(uintAtWidth(f, s.off, s.width)) - s.lo
			v = x < uint64(len(s.bits))*64 && s.bits[x>>6]&(1<<(x&63)) != 0
		case sAddr: // containsAt, inlined
			x := at[netip.Addr](f, s.off)
			if x.Is4() {
				if t := s.addrs.top[x.As16()[12]]; t != part4 {
					v = t == in4
					break
				}
			}
			v = s.addrs.Contains(*x)
		case sLen:
			v = uint64(len(*at[string](f, s.off)))-s.lo <= s.span
		case sLenList:
			v = uint64(len(*at[[]string](f, s.off)))-s.lo <= s.span
		case sWords:
			v = s.words.has(*at[string](f, s.off))
		}
		if v != s.want {
			pc = int(s.to)
			continue
		}
		pc++
	}
}
