package rules

import (
	"log/slog"
	"sync/atomic"
)

// EvalErrors counts the run-time errors of one rule's conditions: a
// regular expression built from a field that does not compile, expr's
// memory budget, a division by zero. A condition that fails counts as
// false (the flow does not match, or is not excepted); the first error of
// a rule is logged, every one is counted. Its methods are safe for
// concurrent use, and cost nothing while there is no error.
type EvalErrors struct {
	rule   string
	n      atomic.Uint64
	last   atomic.Pointer[string]
	logged atomic.Bool
}

// Count returns the errors so far. A nil EvalErrors has none.
func (e *EvalErrors) Count() uint64 {
	if e == nil {
		return 0
	}
	return e.n.Load()
}

// Last returns the latest error's message, or "".
func (e *EvalErrors) Last() string {
	if e == nil {
		return ""
	}
	if p := e.last.Load(); p != nil {
		return *p
	}
	return ""
}

// Carry adds the count and last error of old (the same rule in the
// previous rule set) to e, so a reload does not reset them, and keeps a
// rule already logged from being logged again. Call it before e counts.
func (e *EvalErrors) Carry(old *EvalErrors) {
	if e == nil || old == nil || e == old {
		return
	}
	e.n.Add(old.n.Load())
	if p := old.last.Load(); p != nil && e.last.Load() == nil {
		e.last.Store(p)
	}
	if old.logged.Load() {
		e.logged.Store(true)
	}
}

// record counts err, raised by the condition src.
func (e *EvalErrors) record(src string, err error) {
	if e == nil {
		return
	}
	e.n.Add(1)
	msg := err.Error()
	e.last.Store(&msg)
	if e.logged.CompareAndSwap(false, true) {
		slog.Warn("rule condition failed at run time and counts as false; further errors of this rule are only counted",
			"rule", e.rule, "condition", src, "err", err)
	}
}
