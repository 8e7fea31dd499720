package window

import (
	"math"
	"math/bits"
)

// HyperLogLog (Flajolet, Fusy, Gandouet, Meunier 2007) with one register
// array per bucket of the ring, so that items expire with their bucket,
// and a merged array (the register-wise max over live buckets) kept up to
// date on every add. The estimate needs Σ 2^-M[j] over the merged
// registers; it is kept as a fixed-point integer updated when a merged
// register grows, so an add is O(1). When a bucket leaves the window the
// merged array is rebuilt from the live buckets: O(ring × m), once per
// bucket width per key.
const (
	hllP     = 12        // precision: m = 4096 registers, standard error 1.04/√m ≈ 1.6%
	hllM     = 1 << hllP // registers per array
	hllScale = 50        // Σ 2^(hllScale-M[j]) fits in a uint64; ranks are capped at hllScale
)

// hllAlpha is the bias constant α_m for m >= 128.
var hllAlpha = 0.7213 / (1 + 1.079/float64(hllM))

// hll is one key's sliding HyperLogLog.
type hll struct {
	regs   []uint8     // ring arrays of hllM registers, one per bucket slot
	merged [hllM]uint8 // max over the live buckets
	sum    uint64      // Σ 2^(hllScale-merged[j])
	zeros  int         // merged registers still 0
	est    float64     // cached estimate
}

func newHLL(ring int64) *hll {
	h := &hll{regs: make([]uint8, ring*hllM)}
	h.reset()
	return h
}

// reset empties the sketch, keeping its memory.
func (h *hll) reset() {
	clear(h.regs)
	h.merged = [hllM]uint8{}
	h.sum = hllM << hllScale
	h.zeros = hllM
	h.est = 0
}

// mix64 is the MurmurHash3 64-bit finalizer: items may be weak hashes (a
// port number), and HyperLogLog needs uniformly spread bits.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// add records item in the bucket at slot.
func (h *hll) add(slot int64, item uint64) {
	x := mix64(item)
	j := x >> (64 - hllP)
	rho := uint8(min(bits.LeadingZeros64(x<<hllP|1<<(hllP-1))+1, hllScale))
	r := &h.regs[slot*hllM+int64(j)]
	if rho <= *r {
		return
	}
	*r = rho
	if m := h.merged[j]; rho > m {
		if m == 0 {
			h.zeros--
		}
		h.sum -= 1 << (hllScale - m)
		h.sum += 1 << (hllScale - rho)
		h.merged[j] = rho
		h.est = -1
	}
}

// clearSlot empties the bucket at slot, which has left the window; the
// caller rebuilds the merged array if the bucket held anything.
func (h *hll) clearSlot(slot int64) {
	clear(h.regs[slot*hllM : (slot+1)*hllM])
}

// rebuild recomputes the merged array from the live buckets' slots.
func (h *hll) rebuild(slots []int64) {
	h.merged = [hllM]uint8{}
	for _, s := range slots {
		regs := h.regs[s*hllM : (s+1)*hllM : (s+1)*hllM]
		for j, r := range regs {
			h.merged[j] = max(h.merged[j], r)
		}
	}
	h.sum, h.zeros = 0, 0
	for _, m := range h.merged {
		if m == 0 {
			h.zeros++
		}
		h.sum += 1 << (hllScale - m)
	}
	h.est = -1
}

// estimate returns the cardinality estimate of the live buckets, rounded:
// it is a count of items, and alerts show it.
func (h *hll) estimate() float64 {
	if h.est >= 0 {
		return h.est
	}
	const m = float64(hllM)
	e := hllAlpha * m * m * (1 << hllScale) / float64(h.sum)
	if e <= 2.5*m && h.zeros > 0 { // small range: linear counting
		e = m * math.Log(m/float64(h.zeros))
	}
	h.est = math.Round(e)
	return h.est
}
