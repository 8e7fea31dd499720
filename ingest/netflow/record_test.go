package netflow

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// applyFixed reads every field as apply does, whatever its op and size:
// the kinds read in place (fixedKindOf) give the record state and flow
// apply gives, over values with zero and non-zero bytes, at offsets within
// a record, twice in a row (counters add up).
func TestApplyFixedAsApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for typ := range uint16(400) {
		for _, n := range []uint16{1, 2, 3, 4, 5, 6, 7, 8, 16} {
			o := opFor(typ, n)
			if o == opSkip {
				continue
			}
			if fixedKindOf(o, n) != fkApply {
				fast++
			}
			for range 20 {
				v := make([]byte, n)
				for i := range v {
					if rng.IntN(3) > 0 {
						v[i] = byte(rng.Uint32())
					}
				}
				off := rng.IntN(8)
				rec := make([]byte, off+int(n)+rng.IntN(8))
				copy(rec[off:], v)
				var st1, st2 recState
				var f1, f2 flow.Flow
				fo := []fixedOp{{op: o, kind: fixedKindOf(o, n), off: uint16(off), len: n}}
				for range 2 {
					st1.apply(o, v, &f1)
					st2.applyFixed(fo, rec, &f2)
				}
				if st1 != st2 || !reflect.DeepEqual(f1, f2) {
					t.Fatalf("type %d, %d bytes %x: applyFixed gives %+v %+v, apply %+v %+v", typ, n, v, st2, f2, st1, f1)
				}
			}
		}
	}
	if fast < 20 {
		t.Errorf("only %d (type, size) pairs read in place", fast)
	}
}
