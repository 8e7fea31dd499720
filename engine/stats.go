package engine

import "github.com/flowguard/flowguard/engine/window"

// RuleStats counts what one rule did.
type RuleStats struct {
	ID         string
	Evaluated  uint64 // flows the condition ran on
	Matched    uint64 // flows that matched
	Alerts     uint64 // alerts emitted
	Suppressed uint64 // alerts held back by suppress
	Errors     uint64 // run-time errors of its conditions (each made a condition false)
	LastError  string // the latest of them, "" when none
	// Lifecycle: groups firing now (as of the last tick), alerts beyond
	// Config.MaxFiring (emitted, not tracked), escalations and
	// resolutions emitted.
	Firing         int
	FiringOverflow uint64
	Escalated      uint64
	Resolved       uint64
	// Window is the window's figures; Late also counts the flows the
	// engine kept from it for being beyond the allowed lateness.
	Window window.Stats
	// Learns is set for a rule that learns (baseline, new_terms,
	// beacon); Learned counts the groups it holds and those it evicted
	// past its cap (and, for new_terms, terms evicted).
	Learns         bool
	LearnedGroups  int64
	LearnedEvicted uint64
}

// Stats counts what the engine did.
type Stats struct {
	Flows    uint64 // flows processed
	NoTime   uint64 // flows skipped for want of any timestamp
	Rules    []RuleStats
	EventNow int64 // the watermark (see Time), Unix ns
	Time     TimeStats
}

// Stats returns the engine's counters. Window figures are as of the last
// expiry sweep (or of Flush), so that Stats is safe from any goroutine.
func (e *Engine) Stats() Stats {
	if e.par != nil {
		return e.par.stats(e)
	}
	s := Stats{Flows: e.flows.Load(), NoTime: e.dropped.Load(), EventNow: e.clockSnap.Load(), Time: e.timeStats()}
	for _, rs := range *e.published.Load() {
		st := RuleStats{
			ID:         rs.id,
			Evaluated:  rs.evaluated.Load(),
			Matched:    rs.matched.Load(),
			Alerts:     rs.alerts.Load(),
			Suppressed: rs.suppressed.Load(),

			Firing:         int(rs.firingN.Load()),
			FiringOverflow: rs.firingOverflow.Load(),
			Escalated:      rs.escalated.Load(),
			Resolved:       rs.resolved.Load(),
		}
		if e := rs.errs.Load(); e != nil {
			st.Errors, st.LastError = e.Count(), e.Last()
		}
		if p := rs.winStats.Load(); p != nil {
			st.Window = *p
		}
		st.Window.Late += rs.late.Load()
		if rs.learn != nil {
			st.Learns = true
			st.LearnedGroups, st.LearnedEvicted = rs.learn.counts()
		}
		s.Rules = append(s.Rules, st)
	}
	return s
}

// Flush takes a snapshot of window figures for Stats. Call it from the
// goroutine that calls Process, e.g. at the end of a replay.
func (e *Engine) Flush() {
	if e.par != nil {
		e.par.each(func(i int) { e.par.kids[i].Flush() })
		return
	}
	e.snapshot()
}

func (e *Engine) snapshot() {
	e.publish()
	e.clockSnap.Store(e.watermark)
	for _, rs := range e.rules {
		if rs.win != nil {
			st := rs.win.Stats()
			rs.winStats.Store(&st)
		}
	}
}
