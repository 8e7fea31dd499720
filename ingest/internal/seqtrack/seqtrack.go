// Package seqtrack follows the sequence numbers flow exporters put in
// their datagrams, to count what was lost on the way. NetFlow v5/v7/v8 and
// IPFIX count flow records, NetFlow v9 and sFlow count datagrams.
package seqtrack

// Sequence tracking: exporters number what they send (NetFlow v5/v7/v8 and
// IPFIX count flow records, v9 counts export packets) so that a collector
// can tell how much was lost on the way. Datagrams may arrive out of order
// (a small window) and exporters restart (a big jump), neither of which is
// loss.

const (
	seqGaps       = 8 // gaps held open for late datagrams
	seqGapPackets = 8 // datagrams after which an open gap counts as lost

	// seqBackDatagrams is how many datagrams' worth a sequence number may
	// go backwards and still be a late or duplicate datagram; further back
	// is an exporter restart.
	seqBackDatagrams = 64
)

type seqGap struct {
	lo, hi uint32 // missing [lo, hi)
	at     uint64 // tracker's datagram count when the gap opened
}

// Tracker follows one sequence space (one exporter, version and
// observation domain or engine).
type Tracker struct {
	next     uint32 // expected next sequence number
	init     bool
	resync   bool // the previous datagram's size was unknown: take the next number as given
	packets  uint64
	unit     uint32 // the largest n seen: units per datagram, to scale the back window
	MaxJump  uint32 // a forward jump larger than this is a restart, not loss
	gaps     [seqGaps]seqGap
	ngaps    int
	Lost     uint64 // committed losses
	Restarts uint64
}

// Observe records a datagram numbered seq that carries n units (records or
// 1 for a packet counter) and returns the units newly counted as lost.
// n < 0 means the size is unknown (a data set waited for its template): the
// tracker resynchronises on the next datagram.
func (t *Tracker) Observe(seq uint32, n int) (lost uint64, restart bool) {
	t.packets++
	if n > 0 && uint32(n) > t.unit {
		t.unit = uint32(n)
	}
	if t.unit == 0 {
		t.unit = 1
	}
	before := t.Lost
	switch {
	case !t.init || t.resync:
		t.init, t.resync = true, false
	default:
		d := int32(seq - t.next)
		switch {
		case d == 0:
		case d > 0 && uint32(d) <= t.MaxJump:
			t.openGap(t.next, seq)
		case d < 0 && t.fill(seq, n):
			// A late datagram fills (part of) a gap: not lost after all.
			t.expire()
			return t.Lost - before, false
		case d < 0 && uint32(-d) <= seqBackDatagrams*t.unit:
			// Late beyond its gap's lifetime, or a duplicate: ignore.
			t.expire()
			return t.Lost - before, false
		default:
			t.Restarts++
			t.ngaps = 0
			restart = true
		}
	}
	if n < 0 {
		t.resync = true
		t.next = seq
	} else {
		t.next = seq + uint32(n)
	}
	t.expire()
	return t.Lost - before, restart
}

func (t *Tracker) openGap(lo, hi uint32) {
	if t.ngaps == seqGaps {
		t.Lost += uint64(t.gaps[0].hi - t.gaps[0].lo)
		copy(t.gaps[:], t.gaps[1:])
		t.ngaps--
	}
	t.gaps[t.ngaps] = seqGap{lo: lo, hi: hi, at: t.packets}
	t.ngaps++
}

// fill removes [seq, seq+n) from the open gaps, reporting whether it fell
// in one.
func (t *Tracker) fill(seq uint32, n int) bool {
	if n <= 0 {
		n = 1
	}
	end := seq + uint32(n)
	for i := 0; i < t.ngaps; i++ {
		g := &t.gaps[i]
		if int32(seq-g.lo) < 0 || int32(g.hi-seq) <= 0 {
			continue
		}
		if int32(end-g.hi) > 0 {
			end = g.hi
		}
		switch {
		case seq == g.lo && end == g.hi:
			copy(t.gaps[i:], t.gaps[i+1:t.ngaps])
			t.ngaps--
		case seq == g.lo:
			g.lo = end
		case end == g.hi:
			g.hi = seq
		default:
			// Split: the part after this datagram becomes a gap of its own.
			hi := g.hi
			g.hi = seq
			if t.ngaps == seqGaps {
				t.Lost += uint64(hi - end) // no room: count it now
			} else {
				copy(t.gaps[i+2:t.ngaps+1], t.gaps[i+1:t.ngaps])
				t.gaps[i+1] = seqGap{lo: end, hi: hi, at: g.at}
				t.ngaps++
			}
		}
		return true
	}
	return false
}

// expire commits gaps that stayed open for seqGapPackets datagrams.
func (t *Tracker) expire() {
	for t.ngaps > 0 && t.packets-t.gaps[0].at > seqGapPackets {
		t.Lost += uint64(t.gaps[0].hi - t.gaps[0].lo)
		copy(t.gaps[:], t.gaps[1:t.ngaps])
		t.ngaps--
	}
}
