package window

// Bucket geometry shared by every in-memory window.
//
// Event time is cut into buckets of width ns: bucket seq s covers
// [s*width, (s+1)*width). The window ending at c is the interval
// (c-size, c] and a bucket is live in it when it overlaps it, that is when
// s >= floorDiv(c-size+1, width) and s <= floorDiv(c, width).
//
// Per-key data sits in rings of ring slots indexed by seq mod ring; ring
// is the most buckets that can be live at once, so a live bucket never
// shares its slot with another live one. A ring holds the buckets
// (head-ring, head] of its key's newest bucket head.

// clock is a window's event-time clock and its live bucket range.
type clock struct {
	size  int64 // window length, ns
	width int64 // bucket width, ns
	ring  int64 // slots per ring: the most buckets live at once

	now     int64 // largest event time seen
	started bool
	lo, hi  int64 // live bucket seqs at now: [lo, hi]
	hiSlot  int64 // hi's ring slot
	until   int64 // lo and hi stay as they are for event times in [now, until)
}

func newClock(size int64, buckets int) clock {
	width := size / int64(buckets)
	if width < 1 {
		width = 1
	}
	// floorDiv(c, w) - floorDiv(c-size+1, w) <= ceil((size-1)/w).
	ring := (size-1+width-1)/width + 1
	return clock{size: size, width: width, ring: ring}
}

// advance moves the clock to t when t is newer and reports t's bucket, or
// ok=false when t is late.
func (c *clock) advance(t int64) (seq int64, ok bool) {
	if !c.started || t > c.now {
		if c.started && t < c.until { // common case: still the same live range
			c.now = t
			return c.hi, true
		}
		c.started = true
		c.now = t
		var s span
		c.relocate(&s, t)
		c.hi, c.lo, c.hiSlot = s.seq, s.lo, s.slot
		c.until = t // nothing cached...
		if s.from <= t && t < s.to {
			c.until = s.to // ...unless locate cached t's span
		}
		return c.hi, true
	}
	if t <= c.now-c.size {
		return 0, false
	}
	if t >= c.hi*c.width { // common case: the current bucket
		return c.hi, true
	}
	return floorDiv(t, c.width), true
}

// span caches the buckets of one range of event times, so that updates
// in a row with times in the same bucket divide once: every t in
// [from, to) has bucket seq and window start bucket lo (liveLo), and seq's
// ring slot is slot. The zero span holds nothing.
type span struct {
	from, to int64
	seq, lo  int64
	slot     int64
}

// locate returns t's bucket and the oldest bucket of the window ending at
// t, through the span cache s.
func (c *clock) locate(s *span, t int64) (seq, lo int64) {
	if t < s.from || t >= s.to {
		c.relocate(s, t)
	}
	return s.seq, s.lo
}

// relocate fills s with t's span: locate past its cache.
func (c *clock) relocate(s *span, t int64) {
	seq := floorDiv(t, c.width)
	lo := c.liveLo(t)
	s.seq, s.lo, s.slot = seq, lo, c.slot(seq)
	// seq holds on [seq*width, (seq+1)*width); lo while t-size+1 lies in
	// [lo*width, (lo+1)*width). Near the ends of int64 cache nothing.
	const limit = 1 << 62
	if t <= -limit || t >= limit || c.size >= limit || c.width >= limit {
		s.from, s.to = 1, 0
		return
	}
	s.from = max(seq*c.width, lo*c.width+c.size-1)
	s.to = min((seq+1)*c.width, (lo+1)*c.width+c.size-1)
}

// seqSlot is seq's ring slot, seq a bucket advance returned.
func (c *clock) seqSlot(seq int64) int64 {
	if seq == c.hi {
		return c.hiSlot
	}
	return c.slot(seq)
}

// windowStart is the first event time inside the window.
func (c *clock) windowStart() int64 { return c.now - c.size + 1 }

// slot is seq's index in a ring.
func (c *clock) slot(seq int64) int64 {
	s := seq % c.ring
	if s < 0 {
		s += c.ring
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// ringAdvance moves a ring's head to seq, zeroing the slots of the buckets
// it skips over (they held buckets ring seqs older, long dead).
func ringAdvance[T float64 | int32](c *clock, r []T, head *int64, seq int64) {
	if seq <= *head {
		return
	}
	if seq-*head >= c.ring {
		clear(r)
	} else {
		for q := *head + 1; q <= seq; q++ {
			r[c.slot(q)] = 0
		}
	}
	*head = seq
}

// liveLo is the oldest bucket seq that overlaps the window ending at t.
func (c *clock) liveLo(t int64) int64 { return floorDiv(t-c.size+1, c.width) }

// ringSum sums a ring's slots of seqs [lo, hi] that the ring still holds
// (those in (head-ring, head]).
func ringSum[T float64 | int32](c *clock, r []T, lo, hi, head int64) T {
	var sum T
	for q := max(lo, head-c.ring+1); q <= min(hi, head); q++ {
		sum += r[c.slot(q)]
	}
	return sum
}

// ringFirst returns the start of the oldest non-empty slot of seqs
// [lo, head], clamped to start, the first event time of the window: an
// estimate of a key's first update once older ones have left the window.
func ringFirst[T float64 | int32](c *clock, r []T, lo, head, start int64) int64 {
	for q := max(lo, head-c.ring+1); q <= head; q++ {
		if r[c.slot(q)] != 0 {
			return max(q*c.width, start)
		}
	}
	return start
}

// watermark is what a Sum or Distinct window knows of the engine's
// watermark: updates at or before bound (the watermark less the window's
// size and allowed lateness) are late.
type watermark struct {
	span  int64 // window size + allowed lateness, ns
	set   bool
	bound int64
}

// advance moves the watermark to w if that is later.
func (m *watermark) advance(w int64) {
	if b := w - m.span; !m.set || b > m.bound {
		m.set, m.bound = true, b
	}
}

// late reports whether an update at t is late.
func (m *watermark) late(t int64) bool { return m.set && t <= m.bound }

// expired reports whether a key whose latest update was at last can be
// dropped: every update of it is late now.
func (m *watermark) expired(last int64) bool { return m.set && last <= m.bound }
