package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Rules that learn keep state per group besides their window: a baseline
// (baseline.go), the terms each group has shown (newterms.go), connection
// starts (beacon.go). That state is bounded per rule (a cap on groups, the
// least recently seen evicted and counted), kept across reloads that leave
// the rule's learning unchanged, and saved and restored whole with
// LearnedState (learnstate.go).

// learner is the learned state of one rule.
type learner interface {
	// save appends the state's groups to lr.
	save(lr *LearnedRule)
	// load merges lr's groups into the state.
	load(lr *LearnedRule)
	// summaries returns up to n groups, most telling first (n <= 0: all).
	summaries(r *rules.Rule, n int) []LearnedGroup
	// annotate adds to an alert what was learned of the group that fired.
	annotate(a *alert.Alert)
	// text is a message placeholder's value.
	text(name string) (string, bool)
	counts() (groups int64, evicted uint64)
}

// learnGroups is a table of per-group state T, capped at max groups: past
// it the least recently seen group is evicted (and counted).
type learnGroups[T any, P interface {
	*T
	reset()
}] struct {
	keys    *window.Keys
	state   []T
	max     int
	n       atomic.Int64
	evicted atomic.Uint64
}

func newLearnGroups[T any, P interface {
	*T
	reset()
}](max int) *learnGroups[T, P] {
	return &learnGroups[T, P]{keys: window.NewKeys(), max: max}
}

// get returns key's state, and whether it was just created (reset).
func (g *learnGroups[T, P]) get(key []byte) (*T, bool) {
	s, _, fresh := g.getID(key)
	return s, fresh
}

// getID is get that also returns the group's id (dense, below the most
// groups ever held), for state kept beside T.
func (g *learnGroups[T, P]) getID(key []byte) (*T, int32, bool) {
	id, h := g.keys.Lookup(key)
	if id >= 0 {
		g.keys.Touch(id)
		return &g.state[id], id, false
	}
	if g.keys.Len() >= g.max {
		g.keys.Remove(g.keys.Stalest())
		g.evicted.Add(1)
	}
	id, grown := g.keys.Insert(key, h)
	if grown {
		var z T
		g.state = append(g.state, z)
	}
	g.n.Store(int64(g.keys.Len()))
	P(&g.state[id]).reset()
	return &g.state[id], id, true
}

// getIfRoom is getID for loading saved state: a group not held is created
// only while the table has room, so that merging saved state never evicts
// a group (nil when it would).
func (g *learnGroups[T, P]) getIfRoom(key []byte) (*T, int32, bool) {
	if g.keys.Len() >= g.max {
		if id, _ := g.keys.Lookup(key); id < 0 {
			return nil, -1, false
		}
	}
	return g.getID(key)
}

// each calls fn for every group, most recently seen first.
func (g *learnGroups[T, P]) each(fn func(key []byte, id int32, s *T)) {
	g.keys.Each(func(id int32, key []byte) { fn(key, id, &g.state[id]) })
}

func (g *learnGroups[T, P]) counts() (int64, uint64) { return g.n.Load(), g.evicted.Load() }

// newLearner returns the learned state of r, or nil when r does not learn.
func newLearner(r *rules.Rule) learner {
	switch {
	case r.Baseline != nil:
		return newBaselineState(r)
	case r.Aggregate == rules.NewTermsAgg:
		return newTermsState(r)
	case r.Aggregate == rules.BeaconAgg:
		return newBeaconState(r)
	}
	return nil
}

// LearnVersion fingerprints what a rule's learned state means: the rule's
// window (Version), and the learning parameters that change what is kept
// (seasonality, the new terms' fields). Learned state is kept, across
// reloads and restarts, for the rule id and this version only; thresholds,
// k, factor, warm-up and caps may change without losing it. "" for a rule
// that does not learn.
func LearnVersion(r *rules.Rule) string {
	if !r.Learns() {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(Version(r)))
	switch {
	case r.Baseline != nil:
		fmt.Fprintf(h, "|baseline|%v", r.Baseline.Seasonality)
	case r.NewTerms != nil:
		h.Write([]byte("|new_terms"))
		for _, fd := range r.NewTerms.Fields {
			fmt.Fprintf(h, "|%s", fd.Name)
		}
	case r.Beacon != nil:
		h.Write([]byte("|beacon"))
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// learnedExceeds feeds a Sum or Distinct rule's baseline with the group's
// (rs.key) value at now and reports whether the value is above the
// group's normal; true for a rule without a baseline.
func (rs *ruleState) learnedExceeds(now int64, value float64) bool {
	if rs.base == nil {
		return true
	}
	return rs.base.observe(rs.key, now, value)
}

// learnedText is a learning rule's message placeholder.
func (rs *ruleState) learnedText(name string) (string, bool) {
	if rs.learn == nil {
		return "", false
	}
	return rs.learn.text(name)
}

// LearnedGroup is what a rule learned of one group, for the API and the
// tuning report. Only the fields of the rule's kind are set.
type LearnedGroup struct {
	Group map[string]any `json:"group"`
	// baseline: the season's mean and spread, the samples behind them
	Mean    float64 `json:"mean,omitempty"`
	Spread  float64 `json:"spread,omitempty"`
	Samples int     `json:"samples,omitempty"`
	Season  string  `json:"season,omitempty"`
	// new_terms: terms known within the history
	Terms int `json:"terms,omitempty"`
	// beacon: the current estimate
	Interval float64 `json:"interval,omitempty"`
	Jitter   float64 `json:"jitter,omitempty"`
	Count    int     `json:"count,omitempty"`
	Score    float64 `json:"score,omitempty"`
}

// LearnedSummary is what one rule learned: its groups, most telling first.
type LearnedSummary struct {
	Rule    string         `json:"rule"`
	Kind    string         `json:"kind"` // baseline, new_terms, beacon
	Groups  int64          `json:"groups"`
	Evicted uint64         `json:"evicted"`
	Top     []LearnedGroup `json:"top"`
}

// Learned returns what the learning rule id learned, with up to n groups
// (n <= 0: every group), or false when id is not a learning rule. Call it
// through Pipeline.Do (or from the goroutine that calls Process).
func (e *Engine) Learned(id string, n int) (LearnedSummary, bool) {
	if e.par != nil {
		return e.par.owner(id).Learned(id, n)
	}
	for _, rs := range e.rules {
		if rs.r.ID != id || rs.learn == nil {
			continue
		}
		s := LearnedSummary{Rule: id, Kind: learnKind(rs.r)}
		s.Groups, s.Evicted = rs.learn.counts()
		s.Top = rs.learn.summaries(rs.r, n)
		return s, true
	}
	return LearnedSummary{}, false
}

func learnKind(r *rules.Rule) string {
	if r.Baseline != nil {
		return "baseline"
	}
	return r.Aggregate.String()
}

// decodeGroup decodes a group key for summaries; nil keys decode to {}.
func decodeGroup(r *rules.Rule, key []byte) map[string]any {
	g, ok := flow.DecodeGroup(r.GroupBy, key)
	if !ok {
		return map[string]any{"key": hex.EncodeToString(key)}
	}
	return g
}

// formatSeconds writes a duration in seconds with a unit, as messages do.
func formatSeconds(s float64) string {
	return strconv.FormatFloat(round(s), 'f', -1, 64) + "s"
}

// formatPercent writes a fraction as a percentage.
func formatPercent(f float64) string {
	return strconv.FormatFloat(round(f*100), 'f', -1, 64) + "%"
}

// newLearned sets up the learned state of a new rule state.
func (rs *ruleState) newLearned(r *rules.Rule) {
	rs.learn = newLearner(r)
	if rs.learn == nil {
		return
	}
	rs.learnVersion = LearnVersion(r)
	switch l := rs.learn.(type) {
	case *baselineState:
		rs.base = l
	case *termsState:
		rs.terms = l
	case *beaconState:
		rs.beacon = l
	}
}

// useRule takes the new definition of an unchanged rule's learning
// parameters (k, factor, warm-up, caps...): its learned groups stay.
func (rs *ruleState) useRule(r *rules.Rule) {
	switch {
	case rs.base != nil:
		rs.base.r, rs.base.b = r, r.Baseline
		rs.base.groups.max = r.Baseline.MaxGroups
	case rs.terms != nil:
		rs.terms.t = r.NewTerms
		rs.terms.groups.max = r.NewTerms.MaxGroups
	case rs.beacon != nil:
		rs.beacon.b, rs.beacon.suppress = r.Beacon, int64(r.Suppress)
		rs.beacon.groups.max = r.Beacon.MaxPairs
	}
}

// learnedMessage is a learning rule's default message.
func (rs *ruleState) learnedMessage(a *alert.Alert) (string, bool) {
	r := rs.r
	switch {
	case a.Baseline != nil:
		unit := "/s"
		if !r.Rate || r.ValueUnit() != rules.UnitNone {
			unit = ""
		}
		return fmt.Sprintf("%s: %s%s within %s for %s, above its normal %s (spread %s, %s)", r.Name,
			valueText(a.Value, r), unit, a.Window, a.GroupString(), valueText(a.Baseline.Mean, r),
			valueText(a.Baseline.Spread, r), a.Baseline.Season), true
	case a.NewTerm != nil:
		return fmt.Sprintf("%s: %s shows %s %s, new (%d known)", r.Name, a.GroupString(), a.NewTerm.Field,
			a.NewTerm.Term, a.NewTerm.Known), true
	case a.Beacon != nil:
		return fmt.Sprintf("%s: %s connects every %s ±%s (%d times, score %s)", r.Name, a.GroupString(),
			formatSeconds(a.Beacon.Interval), formatPercent(a.Beacon.Jitter), a.Beacon.Count,
			strconv.FormatFloat(a.Beacon.Score, 'f', -1, 64)), true
	}
	return "", false
}

// learnedList gathers the groups of a summary; only the groups kept have
// their key decoded (a map each), so a summary of the top few of many
// groups stays cheap on the engine's goroutine.
type learnedList struct {
	groups []LearnedGroup
	keys   [][]byte // by group: valid while the engine holds still
}

func (l *learnedList) add(key []byte, g LearnedGroup) {
	l.groups = append(l.groups, g)
	l.keys = append(l.keys, key)
}

// first returns the groups by by, highest first, n of them (n <= 0: all),
// with their keys decoded.
func (l *learnedList) first(r *rules.Rule, n int, by func(*LearnedGroup) float64) []LearnedGroup {
	idx := make([]int, len(l.groups))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return by(&l.groups[idx[a]]) > by(&l.groups[idx[b]]) })
	if n > 0 && len(idx) > n {
		idx = idx[:n]
	}
	out := make([]LearnedGroup, len(idx))
	for j, i := range idx {
		out[j] = l.groups[i]
		out[j].Group = decodeGroup(r, l.keys[i])
	}
	return out
}
