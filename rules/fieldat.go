package rules

import (
	"math"
	"net/netip"
	"reflect"
	"unsafe"

	"github.com/flowguard/flowguard/flow"
)

// fieldAt locates a field of flow.Flow that conditions read directly: a
// closure comparing it with a constant loads it at its offset instead of
// calling flow.Field's getter (one call per node instead of two or three).
// Only fields stored as they are read qualify (unsigned integers, bools,
// addresses, strings, lists of strings); TestFieldAtAgreesWithGetters
// holds them to the getters.
type fieldAt struct {
	off  uintptr
	kind reflect.Kind // Uint8..Uint64, Bool, String, Slice for []string, or Struct for netip.Addr
}

var fieldsAt = func() map[string]fieldAt {
	m := map[string]fieldAt{}
	t := reflect.TypeFor[flow.Flow]()
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("expr")
		if name == "" {
			continue
		}
		switch k := sf.Type.Kind(); {
		case k == reflect.Uint8, k == reflect.Uint16, k == reflect.Uint32, k == reflect.Uint64, k == reflect.Bool,
			sf.Type == reflect.TypeFor[string]():
			m[name] = fieldAt{sf.Offset, k}
		case sf.Type == reflect.TypeFor[[]string]():
			m[name] = fieldAt{sf.Offset, reflect.Slice}
		case sf.Type == reflect.TypeFor[netip.Addr]():
			m[name] = fieldAt{sf.Offset, reflect.Struct}
		}
	}
	return m
}()

func at[T any](f *flow.Flow, off uintptr) *T { return (*T)(unsafe.Add(unsafe.Pointer(f), off)) }

type unsigned interface {
	uint8 | uint16 | uint32 | uint64
}

// uintAt reads an unsigned field as a condition's int.
func uintAt[T unsigned](off uintptr) intFn {
	return func(f *flow.Flow) int64 { return int64(*at[T](f, off)) }
}

func (a *fieldAt) intFn() intFn {
	switch a.kind {
	case reflect.Uint8:
		return uintAt[uint8](a.off)
	case reflect.Uint16:
		return uintAt[uint16](a.off)
	case reflect.Uint32:
		return uintAt[uint32](a.off)
	}
	return uintAt[uint64](a.off)
}

func (a *fieldAt) boolFn() boolFn {
	off := a.off
	return func(f *flow.Flow) bool { return *at[bool](f, off) }
}

// isUint tells an unsigned integer field.
func (a *fieldAt) isUint() bool {
	return a.kind == reflect.Uint8 || a.kind == reflect.Uint16 || a.kind == reflect.Uint32 || a.kind == reflect.Uint64
}

func (a *fieldAt) strFn() strFn {
	off := a.off
	return func(f *flow.Flow) string { return *at[string](f, off) }
}

func (a *fieldAt) listFn() listFn {
	off := a.off
	return func(f *flow.Flow) []string { return *at[[]string](f, off) }
}

func (a *fieldAt) addrFn() addrFn {
	off := a.off
	return func(f *flow.Flow) netip.Addr { return *at[netip.Addr](f, off) }
}

// cmpAt compares an unsigned field with the constant c, as an int.
func cmpAt[T unsigned](off uintptr, op string, c int64) boolFn {
	switch op {
	case "==":
		return func(f *flow.Flow) bool { return int64(*at[T](f, off)) == c }
	case "!=":
		return func(f *flow.Flow) bool { return int64(*at[T](f, off)) != c }
	case "<":
		return func(f *flow.Flow) bool { return int64(*at[T](f, off)) < c }
	case "<=":
		return func(f *flow.Flow) bool { return int64(*at[T](f, off)) <= c }
	case ">":
		return func(f *flow.Flow) bool { return int64(*at[T](f, off)) > c }
	case ">=":
		return func(f *flow.Flow) bool { return int64(*at[T](f, off)) >= c }
	}
	return nil
}

func (a *fieldAt) cmpConst(op string, c int64) boolFn {
	switch a.kind {
	case reflect.Uint8:
		return cmpAt[uint8](a.off, op, c)
	case reflect.Uint16:
		return cmpAt[uint16](a.off, op, c)
	case reflect.Uint32:
		return cmpAt[uint32](a.off, op, c)
	}
	return cmpAt[uint64](a.off, op, c)
}

// inBitsAt tests an unsigned field against a set held as a bitmap.
func inBitsAt[T unsigned](off uintptr, s *memberSet[int64]) boolFn {
	lo, bits := s.lo, s.bits
	n := uint64(len(bits)) * 64
	return func(f *flow.Flow) bool {
		x := uint64(int64(*at[T](f, off)) - lo)
		return x < n && bits[x>>6]&(1<<(x&63)) != 0
	}
}

func (a *fieldAt) inBits(s *memberSet[int64]) boolFn {
	switch a.kind {
	case reflect.Uint8:
		return inBitsAt[uint8](a.off, s)
	case reflect.Uint16:
		return inBitsAt[uint16](a.off, s)
	case reflect.Uint32:
		return inBitsAt[uint32](a.off, s)
	}
	return inBitsAt[uint64](a.off, s)
}

// inAddrSet tests an address field against a CIDR list. An IPv4 address
// whose first byte decides is answered here, without a call.
func (a *fieldAt) inAddrSet(s *AddrSet) boolFn {
	off := a.off
	return func(f *flow.Flow) bool { return s.containsAt(at[netip.Addr](f, off)) }
}

// inStrSet tests a string field against a set of strings.
func (a *fieldAt) inStrSet(s *memberSet[string]) boolFn {
	off := a.off
	if w, ok := packSet(s); ok {
		return func(f *flow.Flow) bool { return w.has(*at[string](f, off)) }
	}
	return strSetContains(a.strFn(), s)
}

// lenIn tests the length of a string or list field against a range (see
// intRange).
func lenIn[T ~string | ~[]string](off uintptr, lo, span uint64, neg bool) boolFn {
	return func(f *flow.Flow) bool { return (uint64(len(*at[T](f, off)))-lo <= span) != neg }
}

// lenCmp compares the length of a string or list field with the constant
// c.
func (a *fieldAt) lenCmp(op string, c int64) boolFn {
	lo, hi, neg, ok := intRange(op, c, 0)
	if !ok {
		return nil
	}
	if lo > hi {
		return func(*flow.Flow) bool { return neg } // no length is in the range
	}
	if a.kind == reflect.String {
		return lenIn[string](a.off, uint64(lo), uint64(hi-lo), neg)
	}
	return lenIn[[]string](a.off, uint64(lo), uint64(hi-lo), neg)
}

// intRange turns "x op c" into "x in lo..hi", negated when neg, for x
// from floor to math.MaxInt64; lo > hi when no x is in it.
func intRange(op string, c, floor int64) (lo, hi int64, neg, ok bool) {
	const top = math.MaxInt64
	switch op {
	case "==", "!=":
		lo, hi = c, c
	case ">":
		if c == top {
			return 1, 0, false, true
		}
		lo, hi = c+1, top
	case ">=":
		lo, hi = c, top
	case "<":
		if c == math.MinInt64 {
			return 1, 0, false, true
		}
		lo, hi = floor, c-1
	case "<=":
		lo, hi = floor, c
	default:
		return 0, 0, false, false
	}
	if hi < floor {
		return 1, 0, op == "!=", true
	}
	return max(lo, floor), hi, op == "!=", true
}
