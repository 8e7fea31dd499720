// Package engine evaluates rules over flows on event time: it enriches each
// flow, runs every rule's condition, feeds the rule's window, and builds an
// alert when a threshold is crossed and the group is not suppressed. It
// hands alerts to a function and never imports a notifier.
package engine

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Config holds what an engine needs besides its rules.
type Config struct {
	// Store holds the windows and the suppression claims (default: a new
	// in-memory store).
	Store window.Store
	// Enricher fills enrichment fields before rules run (optional).
	Enricher enrich.Enricher
	// Emit receives every alert, synchronously, from the goroutine that
	// called Process. It must not keep the engine waiting long: a notifier
	// that can block belongs behind a queue.
	Emit func(*alert.Alert)
	// ExpireEvery is how much event time passes between sweeps that drop
	// idle window keys (default 10s).
	ExpireEvery time.Duration
	// MaxKeys caps the keys each rule's window holds (default
	// window.DefaultMaxKeys).
	MaxKeys int
	// AllowedLateness is how far behind the watermark a flow still
	// counts in a window (default DefaultAllowedLateness).
	AllowedLateness time.Duration
	// FutureTolerance is how far ahead of the watermark a flow may be
	// stamped; later ones are evaluated at the watermark and counted
	// (default DefaultFutureTolerance).
	FutureTolerance time.Duration
	// MaxSources bounds the sources with a clock of their own (default
	// DefaultMaxSources).
	MaxSources int
	// Observe, when set, sees every value an aggregate rule computes for
	// a matching flow (the same value the threshold is compared with),
	// before the comparison: the tuning report's input. It runs on the
	// engine goroutine; group is only valid during the call.
	Observe func(r *rules.Rule, group []byte, value float64, f *flow.Flow)
	// Workers splits the rules over this many engines evaluating each
	// batch side by side (workers.go); alerts come out in the order one
	// engine gives. 0 or 1: one engine. Ignored when Observe is set.
	Workers int
	// Progress, when set, hears on the engine's ticks of each firing alert
	// whose value or last_seen moved (lifecycle.go). It runs on the engine
	// goroutine.
	Progress func(Progress)
	// MaxFiring bounds the firing groups each rule tracks (default
	// DefaultMaxFiring); alerts beyond it are emitted but never resolved,
	// and counted.
	MaxFiring int
}

// Engine runs one rule set. Process must be called from one goroutine at a
// time; Stats may be called from any.
type Engine struct {
	cfg   Config
	rules []*ruleState
	// match evaluates the conditions of rules, in their order, each shared
	// sub-expression once per flow; built with rules.
	match *rules.Matcher
	// published is rules as other goroutines may read it (Stats): Reload
	// replaces it, never changes it.
	published atomic.Pointer[[]*ruleState]
	next      int64 // event time of the next expiry sweep
	// nextResolve is the event time of the next check of firing groups.
	nextResolve int64
	maxFiring   int

	// Event time (clock.go): the watermark, Unix ns, known once started.
	watermark   int64
	started     bool
	sources     []*sourceClock
	sourceIndex map[sourceID]*sourceClock
	lastSource  *sourceClock
	otherSource *sourceClock
	maxSources  int
	held        [holdFlows]heldFlow
	heldN       int

	publishedSources atomic.Pointer[[]*sourceClock]

	flows     atomic.Uint64
	clockSnap atomic.Int64
	dropped   atomic.Uint64 // flows with no usable time

	evals    uint64    // flows evaluated: where an alert falls among a batch's (workers.go)
	caughtUp bool      // no batch waits behind the next (SetCaughtUp)
	seg      []segFlow // flows waiting for the rules (evalSegment)
	mask     []uint64  // of one flow of seg, a bit per rule: its conditions hold
	rows     []uint64  // by rule, a bit per flow of seg: the rule's conditions hold
	pend     []pending // alerts of the segment running, to emit after it
	holding  bool      // a segment runs: emit holds alerts in pend
	ruleAt   int       // the rule the segment runs now (its place in rules)
	enriched bool      // flows arrive enriched (the engines under workers)
	par      *parallel // set: this engine hands the work to engines of its own
}

// samplesPerRule is the size of each rule's ring of recent matching flows
// from which an alert's samples are picked.
const samplesPerRule = 64

type sample struct {
	group uint64
	flow  flow.Flow
}

type ruleState struct {
	// What every flow reads, first, on as few cache lines as may be; the
	// rest (counters read by Stats, the lifecycle's, the samples) after.
	r      *rules.Rule
	key    []byte
	span   int64 // window plus allowed lateness, ns: older than the watermark by more is late
	nMatch uint64
	item   []byte
	window float64 // seconds, for rates

	// win as the interface of the rule's aggregate (one is set).
	sumWin      window.SumWindow
	distinctWin window.DistinctWindow
	topWin      window.TopWindow

	// What the rule learns (learn.go): learn is set for every learning
	// rule, and one of base, terms, beacon as its kind.
	base   *baselineState
	terms  *termsState
	beacon *beaconState

	xch *ruleExchange // shared window: groups crossing on other instances' totals

	// Lifecycle (lifecycle.go): the firing groups by group key.
	firing        map[string]*firingGroup
	firingScratch []byte // firingKey's buffer

	top   topTracker
	ring  *[samplesPerRule]sample // made on the first sample (nextSample)
	ringN int

	win          window.Window
	claim        []byte
	version      string
	id           string // r.ID, immutable: Stats reads it from other goroutines
	learn        learner
	learnVersion string

	// evaluated and matched as of the end of the last batch (Stats);
	// counted on the engine's goroutine without a locked instruction per
	// flow and rule (publish copies them).
	evaluated  atomic.Uint64
	matched    atomic.Uint64
	evalBase   uint64 // Engine.evals when the rule came: every flow evaluated since ran it
	alerts     atomic.Uint64
	suppressed atomic.Uint64
	late       atomic.Uint64 // flows beyond the allowed lateness, kept from the window

	firingN        atomic.Int64
	firingOverflow atomic.Uint64
	escalated      atomic.Uint64
	resolved       atomic.Uint64
	winStats       atomic.Pointer[window.Stats]
	errs           atomic.Pointer[rules.EvalErrors] // r.Errors, for Stats
}

// New builds an engine for a rule set.
func New(cfg Config, set *rules.Set) (*Engine, error) {
	if cfg.Store == nil {
		cfg.Store = window.NewMemoryStore()
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = 10 * time.Second
	}
	if cfg.Emit == nil {
		cfg.Emit = func(*alert.Alert) {}
	}
	if cfg.AllowedLateness <= 0 {
		cfg.AllowedLateness = DefaultAllowedLateness
	}
	if cfg.FutureTolerance <= 0 {
		cfg.FutureTolerance = DefaultFutureTolerance
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.MaxFiring <= 0 {
		cfg.MaxFiring = DefaultMaxFiring
	}
	if cfg.Workers > 1 && cfg.Observe == nil && len(set.Rules) > 1 {
		return newParallel(cfg, set)
	}
	e := &Engine{cfg: cfg, sourceIndex: make(map[sourceID]*sourceClock), maxSources: cfg.MaxSources,
		maxFiring: cfg.MaxFiring}
	states, err := e.states(set, nil)
	if err != nil {
		return nil, err
	}
	e.rules = states
	e.match = newMatcher(states)
	e.published.Store(&states)
	return e, nil
}

// Reload swaps in a new rule set. Rules whose definition did not change
// keep their windows, counters and samples; new and changed rules start
// empty. On error the engine keeps its current rules. Call it from the
// goroutine that calls Process (see Pipeline.Do).
func (e *Engine) Reload(set *rules.Set) error {
	if e.par != nil {
		return e.par.reload(set)
	}
	old := map[string]*ruleState{}
	for _, rs := range e.rules {
		old[rs.r.ID] = rs
	}
	states, err := e.states(set, old)
	if err != nil {
		return err
	}
	for _, rs := range e.rules {
		if !slices.Contains(states, rs) {
			rs.resolveAll(e, "rule changed or removed")
		}
	}
	e.rules = states
	e.match = newMatcher(states)
	e.published.Store(&states)
	e.snapshot()
	return nil
}

// newMatcher builds the matcher of the rules of states, in their order.
func newMatcher(states []*ruleState) *rules.Matcher {
	rs := make([]*rules.Rule, len(states))
	for i, s := range states {
		rs[i] = s.r
	}
	return rules.NewMatcher(rs)
}

// states builds the per-rule state of a set, carrying over the state of
// unchanged rules from old.
func (e *Engine) states(set *rules.Set, old map[string]*ruleState) ([]*ruleState, error) {
	var out []*ruleState
	for _, r := range set.Rules {
		version := Version(r)
		if prev, ok := old[r.ID]; ok && prev.version == version && prev.learnVersion == LearnVersion(r) {
			r.Errors.Carry(prev.errs.Load())
			prev.r = r
			prev.useRule(r)
			prev.errs.Store(r.Errors)
			shipThreshold(r, prev.win)
			out = append(out, prev)
			continue
		}
		rs := &ruleState{r: r, id: r.ID, window: r.Window.Seconds(), version: version,
			span: int64(r.Window + e.cfg.AllowedLateness), evalBase: e.evals}
		rs.errs.Store(r.Errors)
		rs.newLearned(r)
		if r.Aggregate != rules.PerFlow && r.Aggregate != rules.NewTermsAgg && r.Aggregate != rules.BeaconAgg {
			spec := window.Spec{Name: r.ID, Version: version, Size: r.Window, MaxKeys: e.cfg.MaxKeys,
				Lateness: e.cfg.AllowedLateness}
			switch r.Aggregate {
			case rules.Sum:
				spec.Kind = window.Sum
			case rules.Distinct:
				spec.Kind = window.Distinct
			case rules.Top:
				spec.Kind = window.Top
			}
			w, err := e.cfg.Store.Window(spec)
			if err != nil {
				return nil, fmt.Errorf("rule %q: window: %w", r.ID, err)
			}
			rs.win = w
			var ok bool
			switch spec.Kind {
			case window.Sum:
				rs.sumWin, ok = w.(window.SumWindow)
			case window.Distinct:
				rs.distinctWin, ok = w.(window.DistinctWindow)
			case window.Top:
				rs.topWin, ok = w.(window.TopWindow)
			}
			if !ok {
				return nil, fmt.Errorf("rule %q: window: the store gave a %T, not a %v window", r.ID, w, spec.Kind)
			}
			rs.xch = newRuleExchange(r, w)
			shipThreshold(r, w)
			if e.started {
				w.Advance(e.watermark)
			}
		}
		out = append(out, rs)
	}
	return out, nil
}

// Version fingerprints what a rule's window depends on: its condition,
// exceptions, aggregate, fields, window and scale. Thresholds, severity,
// suppression and messages may change without losing the window.
func Version(r *rules.Rule) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d|%v|%g|%v|%s", r.Aggregate, r.Rate, r.Scale, r.Window, cond(r.Where))
	for _, c := range r.Exceptions {
		fmt.Fprintf(h, "|x:%s", cond(c))
	}
	if r.Metric != nil {
		fmt.Fprintf(h, "|m:%s", r.Metric.Name)
	}
	if r.DistinctField != nil {
		fmt.Fprintf(h, "|d:%s", r.DistinctField.Name)
	}
	for _, g := range r.GroupBy {
		fmt.Fprintf(h, "|g:%s", g.Name)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

func cond(c *rules.Condition) string {
	if c == nil {
		return ""
	}
	return c.String()
}

// SetCaughtUp tells the engine whether the batches it is given are all
// there is to do (no batch waits behind them): its workers then take them
// in turn on the calling goroutine, at the CPU cost of one engine, rather
// than side by side. engine.Pipeline sets it; call it from the goroutine
// that calls Process.
func (e *Engine) SetCaughtUp(c bool) { e.caughtUp = c }

// Process runs a batch of flows through enrichment and every rule. The
// batch is not kept; alerts go to Config.Emit before Process returns.
func (e *Engine) Process(batch []flow.Flow) {
	if e.par != nil {
		e.par.process(e, batch)
		return
	}
	e.flows.Add(uint64(len(batch)))
	for i := range batch {
		e.process(&batch[i])
	}
	if e.heldN > 0 { // the batch ended before their sources' clocks were known
		e.release(nil)
	}
	e.evalSegment()
	e.publish()
}

// publish makes the per-rule counts of the flows processed so far visible
// to Stats.
func (e *Engine) publish() {
	for _, rs := range e.rules {
		rs.evaluated.Store(e.evals - rs.evalBase)
		rs.matched.Store(rs.nMatch)
	}
}

func (e *Engine) process(f *flow.Flow) {
	if e.cfg.Enricher != nil && !e.enriched {
		e.cfg.Enricher.Enrich(f)
	}
	et := f.EventTime()
	if et.IsZero() {
		e.dropped.Add(1)
		return
	}
	src := e.source(f)
	now := e.place(f, src, et.UnixNano())
	if !src.established() || src.held > 0 || !e.started {
		e.hold(f, src, now)
		return
	}
	e.evaluate(f, src, now)
}

// evaluate runs every rule on f at event time now, once the watermark is
// known. The rules run on a segment of flows at a time, rule by rule
// (evalSegment): f is queued, and the segment is run before anything
// that must see the flows before f evaluated (a sweep, the end of a
// batch or of a release of held flows).
func (e *Engine) evaluate(f *flow.Flow, src *sourceClock, now int64) {
	if now > e.watermark+int64(e.cfg.FutureTolerance) {
		src.future.Add(1)
		now = e.watermark
	}
	if e.par != nil { // the workers evaluate it, at this watermark (workers.go)
		e.par.record(f, src, now, e.watermark)
		return
	}
	if e.watermark >= e.next || e.watermark >= e.nextResolve {
		e.evalSegment()
		e.advance()
	}
	e.evals++
	e.seg = append(e.seg, segFlow{f: f, src: src, now: now, wm: e.watermark, seq: e.evals})
	if e.cfg.Observe != nil || len(e.seg) >= maxSegment {
		// The tuning report hears values and alerts in the order one flow
		// through every rule gives: a segment of one flow, alerts at once.
		// Else a segment ends at maxSegment flows, whatever the batch.
		e.evalSegment()
	}
}

// maxSegment bounds the flows of a segment (and so its queue and masks),
// whatever the size of the batch Process is given.
const maxSegment = 1024

// segFlow is a flow queued for the rules, with what evaluate knew then.
type segFlow struct {
	f    *flow.Flow
	src  *sourceClock
	now  int64  // its event time, clamped
	wm   int64  // the watermark
	seq  uint64 // Engine.evals for it
	late bool   // late for some rule's window
}

// evalSegment runs the rules over the queued flows, each rule over all
// of them in turn: a rule's conditions, window and state stay in the CPU's
// caches and its branches predictable over the segment, where one flow
// through every rule would evict them rule after rule. Rules are
// independent of each other (their windows, claims and groups are their
// own), so only the order of alerts could tell: they are held and emitted
// after the segment in the order flow by flow would give, by flow then by
// rule.
func (e *Engine) evalSegment() {
	if len(e.seg) == 0 {
		return
	}
	last := e.evals
	// The conditions first, flow by flow: the matcher computes what
	// several rules share once per flow. A bit per rule and flow, in a
	// row of the segment's flows per rule, says which rules then see the
	// flow; each rule walks the set bits of its row.
	words, row := (len(e.rules)+63)/64, (len(e.seg)+63)/64
	if cap(e.mask) < words {
		e.mask = make([]uint64, words)
	}
	if n := len(e.rules) * row; cap(e.rows) < n {
		e.rows = make([]uint64, n)
	} else {
		e.rows = e.rows[:n]
		clear(e.rows)
	}
	mask := e.mask[:words]
	for j := range e.seg {
		clear(mask)
		e.match.Mask(e.seg[j].f, mask)
		at, bit := j/64, uint64(1)<<(j%64)
		for w, m := range mask {
			for ; m != 0; m &= m - 1 {
				e.rows[(w*64+bits.TrailingZeros64(m))*row+at] |= bit
			}
		}
	}
	e.holding = len(e.seg) > 1 // one flow: its alerts come in order as they are
	for i, rs := range e.rules {
		e.ruleAt = i
		for w, m := range e.rows[i*row : (i+1)*row] {
			for ; m != 0; m &= m - 1 {
				s := &e.seg[w*64+bits.TrailingZeros64(m)]
				e.evals = s.seq
				if e.evalRule(rs, s.f, s.now, s.wm) {
					s.late = true
				}
			}
		}
	}
	e.holding = false
	for j := range e.seg {
		if s := &e.seg[j]; s.late {
			s.src.late.Add(1)
		}
	}
	clear(e.seg)
	e.seg = e.seg[:0]
	if len(e.pend) > 0 {
		if len(e.rules) > 1 {
			slices.SortStableFunc(e.pend, func(a, b pending) int {
				return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.rule, b.rule))
			})
		}
		for _, p := range e.pend {
			e.evals = p.seq
			e.cfg.Emit(p.a)
		}
		clear(e.pend)
		e.pend = e.pend[:0]
	}
	e.evals = last
}

// emit hands an alert of a rule's evaluation on: held while a segment
// runs (evalSegment), else at once.
func (e *Engine) emit(a *alert.Alert) {
	if e.holding {
		e.pend = append(e.pend, pending{seq: e.evals, rule: e.ruleAt, a: a})
		return
	}
	e.cfg.Emit(a)
}

// evalRule runs rule rs on f, which matched its conditions, at event time
// now with the watermark at wm, and reports whether f was too late for its
// window.
func (e *Engine) evalRule(rs *ruleState, f *flow.Flow, now, wm int64) (late bool) {
	r := rs.r
	rs.nMatch++
	rs.key = appendGroupKey(rs.key[:0], r.GroupBy, f)
	if r.Aggregate != rules.PerFlow && now <= wm-rs.span {
		// Beyond the allowed lateness: the window would ignore it.
		rs.late.Add(1)
		return true
	}
	var (
		res   window.Result
		value float64
	)
	switch r.Aggregate {
	case rules.PerFlow:
		rs.fire(e, f, now, window.Result{Value: 1, First: now, Last: now}, 1)
		return false
	case rules.NewTermsAgg:
		if rs.terms.observe(rs.key, f, now) {
			rs.fire(e, f, now, window.Result{Value: 1, First: now, Last: now}, 1)
		}
		return false
	case rules.BeaconAgg:
		if rs.beacon.observe(rs.key, f, now) {
			l := &rs.beacon.last
			rs.fire(e, f, now, window.Result{Value: float64(l.count), First: l.first, Last: l.latest}, float64(l.count))
		}
		return false
	case rules.Sum:
		res = rs.sumWin.Add(rs.key, now, rs.metric(f))
	case rules.Distinct:
		rs.item = r.DistinctField.AppendKey(rs.item[:0], f)
		res = rs.distinctWin.AddDistinct(rs.key, now, xxhash.Sum64(rs.item))
	case rules.Top:
		res = rs.topWin.AddTop(rs.key, now, rs.metric(f))
	}
	value = res.Value
	if r.Rate && r.Aggregate != rules.Distinct { // a distinct count is no rate
		value /= rs.window
	}
	if e.cfg.Observe != nil {
		e.cfg.Observe(r, rs.key, value, f)
	}
	// A baseline learns every value, so it hears of it before the threshold.
	exceeds := r.Aggregate == rules.Top || rs.learnedExceeds(now, value)
	if value < r.ThresholdFor(f) {
		if !rs.idle(value) {
			rs.quiet(f, now, value)
		}
		return false
	}
	if !exceeds || r.Aggregate == rules.Top && !rs.inTop(res) {
		rs.below(f, now, value)
		return false
	}
	rs.remember(f, now, value)
	rs.fire(e, f, now, res, value)
	return false
}

// inTop reports whether a Top rule's group, whose result is res, is within
// the rule's share and its k highest.
func (rs *ruleState) inTop(res window.Result) bool {
	r := rs.r
	if r.TopShare > 0 && res.Total > 0 && res.Value/res.Total < r.TopShare {
		return false
	}
	if r.TopK > 0 {
		if rank := rs.topWin.Rank(rs.key); rank == 0 || rank > r.TopK {
			return false
		}
	}
	return true
}

// metric is the value a flow adds to a Sum or Top window.
func (rs *ruleState) metric(f *flow.Flow) float64 {
	if rs.r.Metric == nil {
		// Counting flows: a sampled flow stands for SamplingRate flows,
		// as its bytes and packets stand for more than it carried.
		if f.SamplingRate > 1 {
			return float64(f.SamplingRate)
		}
		return 1
	}
	v := float64(rs.r.Metric.Uint(f))
	if rs.r.Scale != 0 {
		v *= rs.r.Scale
	}
	return v
}

// remember puts a matching flow in the rule's ring of recent flows, from
// which an alert takes its samples. Only flows of groups at least half way
// to the threshold are kept: copying every flow would cost more than the
// rest of the evaluation, and the flows that lead up to an alert are the
// ones worth showing.
func (rs *ruleState) remember(f *flow.Flow, now int64, value float64) {
	if rs.xch != nil {
		rs.xch.keep(rs, f, now, value)
	}
	if rs.unremarkable(value) {
		return
	}
	h := xxhash.Sum64(rs.key)
	rs.top.observe(rs.key, h, value, now, int64(rs.r.Window))
	if value < rs.r.Threshold/2 {
		return
	}
	s := rs.nextSample()
	s.group = h
	s.flow = *f
}

// unremarkable reports whether a group's value is too low for remember to
// keep anything of it: below a tenth of the threshold.
func (rs *ruleState) unremarkable(value float64) bool { return value < rs.r.Threshold/10 }

// idle reports whether quiet would do nothing with a flow whose group is
// at value: no exchange to tell, nothing to remember, no firing group to
// update. Most flows of most rules are that; the check spares them the
// calls.
func (rs *ruleState) idle(value float64) bool {
	return rs.xch == nil && rs.unremarkable(value) && len(rs.firing) == 0
}

// nextSample returns the ring's slot for the next sample, making the ring
// on first use: most rules never come half way to their threshold, and
// the ring (samplesPerRule flows) kept out of ruleState leaves the fields
// every flow reads on a few cache lines.
func (rs *ruleState) nextSample() *sample {
	if rs.ring == nil {
		rs.ring = new([samplesPerRule]sample)
	}
	s := &rs.ring[rs.ringN%samplesPerRule]
	rs.ringN++
	return s
}

func appendGroupKey(dst []byte, by []*flow.Field, f *flow.Flow) []byte {
	for _, fd := range by {
		dst = fd.AppendKey(dst, f)
	}
	return dst
}

func (e *Engine) expire(now int64) {
	for _, rs := range e.rules {
		if rs.win != nil {
			rs.win.Expire(now)
		}
	}
	e.next = now + int64(e.cfg.ExpireEvery)
	e.snapshot()
}

// claimed claims the rule and group (rs.key) at event time now for the
// rule's cooldown, and counts the alert or its suppression.
func (rs *ruleState) claimed(e *Engine, now int64) bool {
	r := rs.r
	rs.claim = append(append(rs.claim[:0], r.ID...), 0)
	rs.claim = append(rs.claim, rs.key...)
	if !e.cfg.Store.Claim(rs.claim, now, r.Suppress) {
		rs.suppressed.Add(1)
		return false
	}
	rs.alerts.Add(1)
	return true
}

func (rs *ruleState) build(f *flow.Flow, now int64, res window.Result, value float64) *alert.Alert {
	r := rs.r
	a := &alert.Alert{
		Rule:      r.ID,
		Name:      r.Name,
		Severity:  r.Severity,
		Tags:      r.Tags,
		Group:     make(map[string]any, len(r.GroupBy)),
		Value:     round(value),
		Threshold: r.ThresholdFor(f),
		Window:    r.Window.String(),
		FirstSeen: time.Unix(0, res.First).UTC(),
		LastSeen:  time.Unix(0, res.Last).UTC(),
		FiredAt:   time.Unix(0, now).UTC(),
		Notify:    r.Notify,
	}
	if r.Aggregate == rules.PerFlow {
		a.Window = "0s"
		a.Threshold = 1
	}
	if rs.learn != nil {
		rs.learn.annotate(a)
	}
	for _, fd := range r.GroupBy {
		a.Group[fd.Name] = fd.Value(f)
	}
	a.Enrichment = enrichment(r.GroupBy, f)
	a.Samples = rs.samples(f)
	for i := range a.Samples {
		if sr := a.Samples[i].SamplingRate; sr > a.SamplingRate {
			a.SamplingRate = sr
		}
	}
	if a.SamplingRate == 0 {
		a.SamplingRate = 1
	}
	a.Message = rs.message(a, f)
	a.ID = alertID(r.ID, rs.key, res.First, r.Window)
	return a
}

// samples returns up to alert.MaxSamples recent flows of the alert's group,
// oldest first, ending with the flow that fired.
func (rs *ruleState) samples(f *flow.Flow) []flow.Flow {
	if rs.r.Aggregate == rules.PerFlow || rs.terms != nil || rs.beacon != nil {
		return []flow.Flow{*f}
	}
	h := xxhash.Sum64(rs.key)
	var out []flow.Flow
	n := min(rs.ringN, samplesPerRule)
	for i := 1; i <= n && len(out) < alert.MaxSamples; i++ {
		s := &rs.ring[(rs.ringN-i)%samplesPerRule]
		if s.group == h {
			out = append(out, s.flow)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (rs *ruleState) message(a *alert.Alert, f *flow.Flow) string {
	r := rs.r
	lookup := func(name string) (string, bool) {
		switch name {
		case "value":
			return valueText(a.Value, r), true
		case "threshold":
			return valueText(a.Threshold, r), true
		case "window":
			return a.Window, true
		case "rule":
			return r.ID, true
		case "name":
			return r.Name, true
		case "severity":
			return r.Severity, true
		case "first_seen":
			return a.FirstSeen.Format(time.RFC3339), true
		case "last_seen":
			return a.LastSeen.Format(time.RFC3339), true
		case "peak":
			return valueText(max(a.Peak, a.Value), r), true
		case "duration":
			return a.LastSeen.Sub(a.FirstSeen).Round(time.Second).String(), true
		case "status":
			if a.Status == "" {
				return alert.StatusFiring, true
			}
			return a.Status, true
		}
		if fd, ok := flow.Lookup(name); ok {
			return string(fd.AppendText(nil, f)), true
		}
		return rs.learnedText(name)
	}
	if r.Message != nil {
		return string(r.Message.Render(nil, lookup))
	}
	if r.Aggregate == rules.PerFlow {
		return fmt.Sprintf("%s: %s", r.Name, a.GroupString())
	}
	if m, ok := rs.learnedMessage(a); ok {
		return m
	}
	unit := "/s" // a rate of a count; other units say per second themselves
	if !r.Rate || r.ValueUnit() != rules.UnitNone {
		unit = ""
	}
	return fmt.Sprintf("%s: %s%s >= %s within %s for %s", r.Name, valueText(a.Value, r), unit,
		valueText(a.Threshold, r), a.Window, a.GroupString())
}

// enrichment collects what enrichment says of the group's addresses.
func enrichment(by []*flow.Field, f *flow.Flow) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, fd := range by {
		var m map[string]any
		switch fd.Name {
		case "src_addr":
			m = describe(f.SrcCountry, f.SrcCity, f.SrcASN, f.SrcASOrg, f.SrcInternal, f.SrcNetwork, f.SrcLists)
		case "dst_addr":
			m = describe(f.DstCountry, f.DstCity, f.DstASN, f.DstASOrg, f.DstInternal, f.DstNetwork, f.DstLists)
		}
		if m != nil {
			out[fd.Name] = m
		}
	}
	return out
}

func describe(country, city string, asn uint32, org string, internal bool, network string, lists []string) map[string]any {
	m := map[string]any{"internal": internal}
	if country != "" {
		m["country"] = country
	}
	if city != "" {
		m["city"] = city
	}
	if asn != 0 {
		m["asn"] = asn
	}
	if org != "" {
		m["as_org"] = org
	}
	if network != "" {
		m["network"] = network
	}
	if len(lists) > 0 {
		m["lists"] = lists
	}
	return m
}

// alertID is a stable hash of the rule, the group and the window's start:
// the same input gives the same ids, and one episode keeps one id.
func alertID(rule string, key []byte, first int64, size time.Duration) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write(key)
	start := first
	if size > 0 {
		start -= first % int64(size)
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(start) >> (56 - 8*i))
	}
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func round(v float64) float64 {
	if v == math.Trunc(v) {
		return v
	}
	return math.Round(v*1000) / 1000
}
