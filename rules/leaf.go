package rules

import (
	"math"
	"net/netip"
	"reflect"

	"github.com/flowguard/flowguard/flow"
)

// leaf describes a test on one field read at its offset that Mask's
// program runs in its own loop, without calling the test's closure: the
// closure compiler gives one to the nodes it compiles from such tests, and
// the closure stays what Rule.Match runs. The test holds when the value is
// in it, or, when neg, when it is not.
type leaf struct {
	kind     stepKind // sBool, sRange, sBits, sAddr, sLen, sLenList or sWords
	width    uint8    // sRange, sBits: the integer field's size in bytes
	neg      bool
	off      uintptr
	lo, span uint64   // sRange, sLen: lo..lo+span; sBits: the bitmap's first value
	bits     []uint64 // sBits
	addrs    *AddrSet // sAddr
	words    *wordSet // sWords
}

func (a *fieldAt) width() uint8 {
	switch a.kind {
	case reflect.Uint8:
		return 1
	case reflect.Uint16:
		return 2
	case reflect.Uint32:
		return 4
	}
	return 8
}

// uintAtWidth reads an unsigned field of width bytes as a condition's int.
func uintAtWidth(f *flow.Flow, off uintptr, width uint8) int64 {
	switch width {
	case 1:
		return int64(*at[uint8](f, off))
	case 2:
		return int64(*at[uint16](f, off))
	case 4:
		return int64(*at[uint32](f, off))
	}
	return int64(*at[uint64](f, off))
}

func (a *fieldAt) boolLeaf() *leaf { return &leaf{kind: sBool, off: a.off} }

// rangeLeaf tests an integer field against lo..hi (nil when empty).
func (a *fieldAt) rangeLeaf(lo, hi int64, neg bool) *leaf {
	if lo > hi {
		return nil
	}
	return &leaf{kind: sRange, width: a.width(), neg: neg, off: a.off, lo: uint64(lo), span: uint64(hi) - uint64(lo)}
}

// cmpLeaf is an integer field compared with the constant c.
func (a *fieldAt) cmpLeaf(op string, c int64) *leaf {
	lo, hi, neg, ok := intRange(op, c, math.MinInt64)
	if !ok {
		return nil
	}
	return a.rangeLeaf(lo, hi, neg)
}

// lenLeaf is the length of a string or list field compared with c.
func (a *fieldAt) lenLeaf(op string, c int64) *leaf {
	lo, hi, neg, ok := intRange(op, c, 0)
	if !ok || lo > hi {
		return nil
	}
	kind := sLen
	if a.kind == reflect.Slice {
		kind = sLenList
	}
	return &leaf{kind: kind, neg: neg, off: a.off, lo: uint64(lo), span: uint64(hi - lo)}
}

func (a *fieldAt) bitsLeaf(s *memberSet[int64]) *leaf {
	return &leaf{kind: sBits, width: a.width(), off: a.off, lo: uint64(s.lo), bits: s.bits}
}

func (a *fieldAt) addrLeaf(s *AddrSet) *leaf { return &leaf{kind: sAddr, off: a.off, addrs: s} }

func (a *fieldAt) wordsLeaf(w *wordSet, neg bool) *leaf {
	return &leaf{kind: sWords, neg: neg, off: a.off, words: w}
}

// eqLeaf is a string field compared with the constant c.
func (a *fieldAt) eqLeaf(op, c string) *leaf {
	if len(c) > 8 || op != "==" && op != "!=" {
		return nil
	}
	return a.wordsLeaf(&wordSet{n: len(c), words: []uint64{packWord(c)}}, op == "!=")
}

// containsAt is Contains of the address at x, answered without a call
// when x is IPv4 and its first byte decides.
func (s *AddrSet) containsAt(x *netip.Addr) bool {
	if x.Is4() {
		if t := s.top[x.As16()[12]]; t != part4 {
			return t == in4
		}
	}
	return s.Contains(*x)
}
