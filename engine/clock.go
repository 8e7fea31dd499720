package engine

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// Event time. Each source of flows (an exporter: its address and export
// type; the zero address for files and captures) has its own clock, fed
// by its flows' receive times when they carry one (the collector's clock
// live; the packet time of an export capture; the meter's emission time)
// and by their event times otherwise. A source clock moves forward only
// when its last clockAgree observations are all past it, to the earliest
// of them: one flow (or two) stamped far ahead of its neighbours never
// moves it, while a real jump (a capture with a gap) is followed once
// confirmed. A new source's first flows wait until its clock is known.
//
// The watermark W is the largest source clock: windows advance on W alone.
// A flow stamped after W+FutureTolerance moves nothing: it is evaluated at
// W and counted as future. A flow at or before W-window-AllowedLateness is
// late for that rule's window, counted per rule and per source.
//
// Where flows carry receive times, a source whose event times run behind
// them by more than AllowedLateness, or ahead by more than
// FutureTolerance (an exporter with a wrong clock), has its flows placed
// on the receive clock: shifted by the median of its recent
// receive-minus-event offsets. Inside those bounds event times are used
// as they are.

const (
	// clockObs is how many recent receive-minus-event offsets a source
	// keeps for its shift.
	clockObs = 8
	// clockAgree is how many consecutive observations must agree before
	// a source clock moves.
	clockAgree = 3
	// holdFlows bounds the flows held until their sources' clocks are known.
	holdFlows = 16
	// DefaultMaxSources bounds the sources with a clock of their own;
	// flows of further sources share one "other" clock.
	DefaultMaxSources = 1024
	// DefaultAllowedLateness covers the packet meter's and common
	// exporters' inactive timeouts (15 s to 30 s) and their export delay.
	DefaultAllowedLateness = 60 * time.Second
	// DefaultFutureTolerance is how far ahead of the watermark a flow may
	// be stamped before it is clamped.
	DefaultFutureTolerance = 30 * time.Second
)

// otherSources is the Type of the clock shared by the sources past
// Config.MaxSources.
const otherSources = "other"

// sourceID names a source: exporter address and type.
type sourceID struct {
	addr netip.Addr
	typ  string
}

// sourceClock is one source's clock and counters. The engine goroutine
// owns all but the atomics, which Stats reads.
type sourceClock struct {
	id    sourceID
	obs   [clockAgree]int64 // the latest observations, a ring
	n     int64             // observations so far
	clock int64             // set once n >= clockAgree

	offs   [clockObs]int64 // recent receive-minus-event offsets, a ring
	offN   int64
	offset int64 // median of offs
	shift  int64 // added to the source's event times: 0 or offset
	held   int   // flows of the source in Engine.held

	flows, late, future  atomic.Uint64
	clockSnap, shiftSnap atomic.Int64
}

// observe feeds the source clock with o and reports whether the clock
// moved: to the earliest of the last clockAgree observations, when later.
func (s *sourceClock) observe(o int64) bool {
	s.obs[s.n%clockAgree] = o
	s.n++
	if s.n < clockAgree || (s.n > clockAgree && o <= s.clock) {
		// An observation at or before the clock cannot bring all
		// clockAgree of them after it.
		return false
	}
	c := s.obs[0]
	for _, v := range s.obs[1:] {
		c = min(c, v)
	}
	if s.n == clockAgree || c > s.clock {
		s.clock = c
		return true
	}
	return false
}

// established reports whether the source clock is known.
func (s *sourceClock) established() bool { return s.n >= clockAgree }

// observeOffset feeds a receive-minus-event offset and sets the shift the
// source's event times take: at each of its first clockObs flows, then
// every clockObs flows, so that it stays put between revisions.
func (s *sourceClock) observeOffset(d, lateness, tolerance int64) {
	s.offs[s.offN%clockObs] = d
	s.offN++
	n := min(s.offN, clockObs)
	if s.offN > clockObs && s.offN%clockObs != 0 {
		return // settled: the shift is revised every clockObs flows
	}
	var sorted [clockObs]int64
	copy(sorted[:n], s.offs[:n])
	for i := int64(1); i < n; i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	s.offset = sorted[(n-1)/2]
	if s.offset > lateness || s.offset < -tolerance {
		s.shift = s.offset
	} else {
		s.shift = 0
	}
	s.shiftSnap.Store(s.shift)
}

// source returns f's source clock, creating it while the table has room.
func (e *Engine) source(f *flow.Flow) *sourceClock {
	if s := e.lastSource; s != nil && s.id.addr == f.SamplerAddress && s.id.typ == f.Type {
		return s
	}
	id := sourceID{addr: f.SamplerAddress, typ: f.Type}
	s, ok := e.sourceIndex[id]
	if !ok {
		if len(e.sources) >= e.maxSources {
			if e.otherSource == nil {
				e.otherSource = &sourceClock{id: sourceID{typ: otherSources}}
				e.publishSources()
			}
			s = e.otherSource
		} else {
			s = &sourceClock{id: id}
			e.sourceIndex[id] = s
			e.sources = append(e.sources, s)
			e.publishSources()
		}
	}
	e.lastSource = s
	return s
}

// publishSources makes the source list visible to Stats.
func (e *Engine) publishSources() {
	list := append([]*sourceClock(nil), e.sources...)
	if e.otherSource != nil {
		list = append(list, e.otherSource)
	}
	e.publishedSources.Store(&list)
}

// place feeds f's source clock and returns the event time f is evaluated
// at, before the future bound: its own, or shifted onto the receive clock
// for a source whose clock is off.
func (e *Engine) place(f *flow.Flow, s *sourceClock, t int64) int64 {
	s.flows.Add(1)
	o := t
	if !f.TimeReceived.IsZero() {
		o = f.TimeReceived.UnixNano()
		s.observeOffset(o-t, int64(e.cfg.AllowedLateness), int64(e.cfg.FutureTolerance))
		t += s.shift
	}
	if s.observe(o) {
		s.clockSnap.Store(s.clock)
		if s.clock > e.watermark && e.started {
			e.watermark = s.clock
		}
	}
	return t
}

// heldFlow is a flow whose source clock was not known when it came.
type heldFlow struct {
	f   flow.Flow
	src *sourceClock
	t   int64
}

// hold keeps f until its source's clock is known: its clockAgree-th flow,
// so that a new source's first flows are judged against a watermark that
// knows it (one stamped far ahead of the rest is clamped, not taken for
// the source's clock). Held flows are evaluated when their source's clock
// is known, or when holdFlows are held, or at the end of the batch.
func (e *Engine) hold(f *flow.Flow, s *sourceClock, t int64) {
	h := &e.held[e.heldN]
	h.f, h.src, h.t = *f, s, t
	e.heldN++
	s.held++
	switch {
	case s.established():
		if !e.started {
			e.start(s.clock)
		}
		e.release(s)
	case e.heldN == holdFlows:
		e.release(nil)
	}
}

// heldClock is the watermark the held flows agree on when no source clock
// was established: the clockAgree-th largest of their observations, or
// the smallest when fewer are held.
func (e *Engine) heldClock() int64 {
	var obs [holdFlows]int64
	for i := range e.heldN {
		h := &e.held[i]
		obs[i] = h.t
		if !h.f.TimeReceived.IsZero() {
			obs[i] = h.f.TimeReceived.UnixNano()
		}
	}
	return agreed(obs[:e.heldN])
}

// agreed returns the clockAgree-th largest of vals, or the smallest when
// there are fewer: the latest time that clockAgree of them reach.
func agreed(vals []int64) int64 {
	var top [clockAgree]int64
	k := 0
	for _, v := range vals {
		if k < clockAgree {
			top[k] = v
			k++
		} else if v <= top[clockAgree-1] {
			continue
		} else {
			top[clockAgree-1] = v
		}
		for j := k - 1; j > 0 && top[j] > top[j-1]; j-- {
			top[j], top[j-1] = top[j-1], top[j]
		}
	}
	return top[k-1]
}

// start sets the first watermark: w, or a later established source clock.
func (e *Engine) start(w int64) {
	e.started = true
	e.watermark = w
	for _, s := range e.sources {
		if s.established() && s.clock > e.watermark {
			e.watermark = s.clock
		}
	}
}

// release evaluates, in their order, the held flows of source s, or all
// of them when s is nil (starting the watermark from them if need be).
func (e *Engine) release(s *sourceClock) {
	if !e.started {
		e.start(e.heldClock())
	}
	kept := 0
	for i := range e.heldN {
		h := &e.held[i]
		if s != nil && h.src != s {
			if kept != i {
				e.held[kept] = *h
			}
			kept++
			continue
		}
		h.src.held--
		e.evaluate(&h.f, h.src, h.t)
	}
	e.evalSegment() // before the held flows move
	for i := kept; i < e.heldN; i++ {
		e.held[i].f = flow.Flow{}
	}
	e.heldN = kept
}

// advance sweeps the windows, telling them the watermark, each
// ExpireEvery of it. Between sweeps the engine keeps late flows from the
// windows itself (evaluate), so they need not hear of every move.
func (e *Engine) advance() {
	if e.watermark >= e.next {
		e.expire(e.watermark)
	}
	if e.watermark >= e.nextResolve {
		e.tick()
	}
}

// SourceStats is what the engine knows of one source's clock.
type SourceStats struct {
	// Exporter address (invalid for files and captures) and flow type;
	// Type "other" gathers the sources past the table's bound.
	Address netip.Addr
	Type    string
	Flows   uint64 // flows seen
	Late    uint64 // flows late for at least one rule's window
	Future  uint64 // flows stamped past the watermark plus the future tolerance, clamped
	Clock   int64  // the source's clock, Unix ns (0 until known)
	Shift   int64  // ns added to its event times to place them on the receive clock
}

// TimeStats is the engine's clock: its watermark and what it had to
// correct or count.
type TimeStats struct {
	Watermark       int64 // Unix ns; 0 until known
	AllowedLateness time.Duration
	FutureTolerance time.Duration
	Late            uint64 // flows late for at least one rule's window
	Future          uint64 // flows clamped to the watermark
	Sources         []SourceStats
}

// timeStats gathers TimeStats from any goroutine.
func (e *Engine) timeStats() TimeStats {
	ts := TimeStats{
		Watermark:       e.clockSnap.Load(),
		AllowedLateness: e.cfg.AllowedLateness,
		FutureTolerance: e.cfg.FutureTolerance,
	}
	if p := e.publishedSources.Load(); p != nil {
		for _, s := range *p {
			ss := SourceStats{
				Address: s.id.addr, Type: s.id.typ,
				Flows: s.flows.Load(), Late: s.late.Load(), Future: s.future.Load(),
				Clock: s.clockSnap.Load(), Shift: s.shiftSnap.Load(),
			}
			ts.Late += ss.Late
			ts.Future += ss.Future
			ts.Sources = append(ts.Sources, ss)
		}
	}
	return ts
}
