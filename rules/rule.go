// Package rules loads YAML detection rules, checks them and compiles their
// conditions. It never touches the network; the engine runs what it builds.
//
// Conditions are expr-lang expressions over flow.Flow's fields. They are
// type-checked at load and compiled into typed Go closures that evaluate a
// flow without allocating; the few constructs the closure compiler does not
// cover run on the expr VM instead (see Condition.Native).
package rules

import (
	"time"

	"github.com/flowguard/flowguard/flow"
)

// Aggregate is what a rule does with the flows that match it.
type Aggregate uint8

// Aggregates.
const (
	PerFlow     Aggregate = iota // every matching flow is an alert (subject to suppress)
	Sum                          // sum of Metric (bytes, packets) or count of flows over Window
	Distinct                     // number of distinct values of DistinctField over Window
	Top                          // heavy hitters by Metric over Window
	NewTermsAgg                  // a value of NewTerms.Fields the group has not shown lately
	BeaconAgg                    // connections of a group starting at a regular interval
)

// String names the aggregate as rule summaries print it.
func (a Aggregate) String() string {
	switch a {
	case PerFlow:
		return "match"
	case Sum:
		return "sum"
	case Distinct:
		return "distinct"
	case Top:
		return "top"
	case NewTermsAgg:
		return "new_terms"
	case BeaconAgg:
		return "beacon"
	}
	return "unknown"
}

// Rule is one compiled rule, ready for the engine.
type Rule struct {
	ID          string
	Name        string
	Description string
	Severity    string
	Tags        []string
	Notify      []string // named notifiers; empty means route by config

	File   string // where the rule was defined, for messages
	Line   int
	Column int

	// Match reports whether a flow counts for this rule: the where
	// condition holds and no exception does. It does not allocate (unless
	// a condition is not Native) and is safe for concurrent use.
	Match func(*flow.Flow) bool
	// Where is the compiled where condition, nil when the rule has none.
	Where *Condition
	// Exceptions are the compiled exceptions, in file order.
	Exceptions []*Condition
	// Errors counts the run-time errors of Where and Exceptions.
	Errors *EvalErrors
	// loaded: Match is Where and not any of Exceptions, as the loader
	// built it, so that a Matcher may evaluate them instead.
	loaded bool

	Aggregate Aggregate
	// Metric is the field summed by Sum and Top ("bytes", "packets"), nil
	// when the rule counts flows.
	Metric *flow.Field
	// Scale multiplies each value before it is added: 8 for thresholds
	// in bits (bps), else 1.
	Scale float64
	// Rate compares the window's value per second instead of its total.
	Rate bool
	// DistinctField is the field counted by Distinct.
	DistinctField *flow.Field
	GroupBy       []*flow.Field
	Window        time.Duration
	Threshold     float64 // Sum, Distinct: fire when value >= Threshold; Top: minimum value
	// ByNetwork, when set, overrides Threshold per named network of the
	// flow's group (threshold: {default, by, networks}); see ThresholdFor.
	ByNetwork *NetworkThresholds
	TopK      int     // Top: a key must rank within the first TopK
	TopShare  float64 // Top: and hold at least this share (0..1) of the window's total
	Suppress  time.Duration
	// ResolveAfter is how long a firing group must stay below the
	// threshold's hysteresis level before its alert is resolved (default:
	// the window; 1m for per-flow rules).
	ResolveAfter time.Duration
	// Escalate are the factors of the value first sent at which a firing
	// alert is sent again (default DefaultEscalate; empty: never).
	Escalate []float64

	// Baseline, on a Sum or Distinct rule, compares each group with its
	// own learned normal; Threshold is then a floor (see learn.go).
	Baseline *Baseline
	NewTerms *NewTerms // set when Aggregate is NewTermsAgg
	Beacon   *Beacon   // set when Aggregate is BeaconAgg

	Message *Template // nil: the engine writes a default message
}

// Set is a loaded rule set.
type Set struct {
	Rules    []*Rule
	Files    []string // the files it came from
	Disabled []string // ids of valid rules skipped with enabled: false
}

// Cost is the estimated worst-case cost per flow of the rule's conditions,
// the sum of Condition.Cost over Where and Exceptions.
func (r *Rule) Cost() int64 {
	var c int64
	if r.Where != nil {
		c += r.Where.Cost()
	}
	for _, e := range r.Exceptions {
		c += e.Cost()
	}
	return c
}

// Native reports whether every condition of the rule runs as compiled
// closures (see Condition.Native).
func (r *Rule) Native() bool {
	if r.Where != nil && !r.Where.Native() {
		return false
	}
	for _, e := range r.Exceptions {
		if !e.Native() {
			return false
		}
	}
	return true
}
