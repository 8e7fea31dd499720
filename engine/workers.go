package engine

import (
	"cmp"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Workers. With Config.Workers > 1 an engine splits its rules over that
// many engines of its own (never more than the rules). It keeps the
// event-time clocks itself, once for all of them: it places each flow of
// a batch and, where one engine would evaluate it, records a step (the
// flow, its event time, the watermark then). It hands the steps to all
// the workers at once, one on the calling goroutine and the others on
// goroutines of their own, started with the engine and woken by a channel
// for each batch (no goroutine and no allocation per batch: about 0.6–1 µs
// of CPU per hand-over to 2 workers, BenchmarkWorkersEach, 3–4 ns per flow
// of a 256-flow batch); the batch is shared, read only. Flows are
// enriched once, before. Every worker evaluates every step at its
// watermark, so the n-th flow evaluated is the n-th in every worker and
// each worker's watermark is one engine's: an alert is tagged with that
// count and its rule's place in the set, and the alerts of a batch are
// emitted after it, on the calling goroutine, in that order, which is the
// order one engine emits them in. Replays are byte-identical for any
// number of workers.
//
// Rules are split by rule, not by group: a flow is evaluated by each rule
// once either way, and a split by group key would run every rule's
// condition and key in every worker to find the owner (measured worse:
// BenchmarkWorkersSplit, README "Cost curves"). A rule stays on its worker across
// reloads (its window, samples and counters with it); new rules go to the
// worker with the least estimated cost.
//
// With the in-memory store, each worker keeps the suppression claims of
// its own rules (claim keys start with the rule id, so no claim is ever
// looked up by two workers), which keeps claim expiry independent of how
// the workers interleave. A shared store (Redis) keeps them shared.

// parallel is the state of an engine that hands its work to workers.
type parallel struct {
	sideBySide uint64 // batches the workers took side by side

	emit     func(*alert.Alert)
	enricher enrich.Enricher

	kids   []*Engine
	sets   []*rules.Set   // each worker's rules
	owners map[string]int // rule id → worker
	order  atomic.Pointer[map[string]int]
	out    [][]pending // each worker's alerts of the current call
	merged []pending

	// The workers after the first run on goroutines of their own, for
	// the engine's life: each waits on its start channel for fn, runs it
	// and reports on done. The channels order fn's writes and the
	// worker's before the caller reads them.
	fn    func(int) // given the worker's number
	start []chan struct{}
	done  chan struct{}
	run   func(int) // evaluates steps on worker i: one func for every batch, no allocation

	// The outer engine keeps the clocks, once for all workers: it places
	// each flow of a batch and, where one engine would evaluate it,
	// records a step; the workers evaluate the steps in order, each at
	// the watermark of its step.
	steps   []step
	held    []flow.Flow // copies of the held flows the steps evaluate (capacity kept: never moves)
	cur     *flow.Flow  // the batch's flow being placed
	srcs    map[*sourceClock]int
	lastSrc *sourceClock
	lastIdx int
	wm      int64 // the outer engine's watermark after the batch
	started bool
	// Each worker counts its late flows in sourceClocks of its own, one
	// for each of the outer engine's sources; Stats reads them.
	shadows atomic.Pointer[shadows]
}

// step is one evaluation of a flow: at event time now, with the
// watermark at wm, for the source numbered src.
type step struct {
	f   *flow.Flow
	now int64
	wm  int64
	src int
}

// shadows are the workers' clocks of the outer engine's sources: of[j] is
// the j-th source numbered, kids[i][j] its clock in worker i. Replaced,
// never changed, when a source comes.
type shadows struct {
	of   []*sourceClock
	kids [][]*sourceClock
}

// pending is an alert held until the workers are done, with its place.
type pending struct {
	seq  uint64 // flows evaluated by its worker when it fired
	rule int    // its rule's place in the set
	a    *alert.Alert
}

func newParallel(cfg Config, set *rules.Set) (*Engine, error) {
	if cfg.Store == nil {
		cfg.Store = window.NewMemoryStore()
	}
	if cfg.Emit == nil {
		cfg.Emit = func(*alert.Alert) {}
	}
	n := min(cfg.Workers, len(set.Rules))
	p := &parallel{emit: cfg.Emit, enricher: cfg.Enricher, kids: make([]*Engine, n), out: make([][]pending, n)}
	sets, owners, order := p.assign(set)
	for i := range n {
		kc := cfg
		kc.Workers = 0
		if m, ok := cfg.Store.(*window.MemoryStore); ok {
			kc.Store = ownClaims{Store: m, claims: window.NewMemoryStore()}
		}
		kc.Emit = func(a *alert.Alert) {
			p.out[i] = append(p.out[i], pending{seq: p.kids[i].evals, rule: (*p.order.Load())[a.Rule], a: a})
		}
		k, err := New(kc, sets[i])
		if err != nil {
			return nil, err
		}
		k.enriched = true
		p.kids[i] = k
	}
	p.sets, p.owners = sets, owners
	p.order.Store(&order)
	p.run = p.evaluate
	p.srcs = map[*sourceClock]int{}
	p.shadows.Store(&shadows{kids: make([][]*sourceClock, n)})
	p.start = make([]chan struct{}, n-1)
	p.done = make(chan struct{}, n-1)
	for i := range p.start {
		p.start[i] = make(chan struct{}, 1)
		go p.work(i+1, p.start[i])
	}
	// The outer engine keeps the clocks; the flows come to it enriched.
	e := &Engine{cfg: cfg, par: p, sourceIndex: make(map[sourceID]*sourceClock), maxSources: cfg.MaxSources,
		maxFiring: cfg.MaxFiring, enriched: true}
	// The goroutines hold p, not e: once e is dropped they are told to end.
	runtime.AddCleanup(e, func(start []chan struct{}) {
		for _, c := range start {
			close(c)
		}
	}, p.start)
	return e, nil
}

// work runs on worker i's goroutine: fn on it each time start says so,
// until start is closed.
func (p *parallel) work(i int, start <-chan struct{}) {
	for range start {
		p.fn(i)
		p.done <- struct{}{}
	}
}

// ownClaims is a worker's view of the in-memory store: the shared windows,
// and claims of its own.
type ownClaims struct {
	window.Store
	claims *window.MemoryStore
}

func (o ownClaims) Claim(key []byte, now int64, ttl time.Duration) bool {
	return o.claims.Claim(key, now, ttl)
}

// ruleCost estimates what a rule costs per flow, to balance the workers:
// its conditions, and its window for the flows that match.
func ruleCost(r *rules.Rule) int64 {
	c := 100 + r.Cost()
	switch r.Aggregate {
	case rules.Distinct, rules.Top:
		c += 100
	case rules.Sum:
		c += 50
	}
	return c
}

// assign splits set over the workers: rules known keep their worker, new
// ones go to the worker with the least cost so far, in the set's order.
func (p *parallel) assign(set *rules.Set) ([]*rules.Set, map[string]int, map[string]int) {
	n := len(p.kids)
	load := make([]int64, n)
	owners := make(map[string]int, len(set.Rules))
	order := make(map[string]int, len(set.Rules))
	for i, r := range set.Rules {
		order[r.ID] = i
		if k, ok := p.owners[r.ID]; ok && k < n {
			owners[r.ID] = k
			load[k] += ruleCost(r)
		}
	}
	for _, r := range set.Rules {
		if _, ok := owners[r.ID]; ok {
			continue
		}
		k := 0
		for j := range load {
			if load[j] < load[k] {
				k = j
			}
		}
		owners[r.ID] = k
		load[k] += ruleCost(r)
	}
	sets := make([]*rules.Set, n)
	for i := range sets {
		sets[i] = &rules.Set{Files: set.Files, Disabled: set.Disabled}
	}
	for _, r := range set.Rules {
		s := sets[owners[r.ID]]
		s.Rules = append(s.Rules, r)
	}
	return sets, owners, order
}

// parallelMin is the smallest batch the workers take side by side; they
// take a smaller one in turn, on the calling goroutine: waking a worker's
// goroutine and waiting for it (a wake-up of another thread each way)
// costs more than the rules of a few flows. They also take a batch in
// turn when the engine is caught up (SetCaughtUp): side by side, the same
// rules cost more CPU per flow (each core's caches hold its rules' state
// apart from the flows it reads, and each batch wakes a thread), which
// only pays when the batches would otherwise wait.
const parallelMin = 128

// each runs fn on every worker at once and waits for them: the first on
// the calling goroutine, the others on theirs.
func (p *parallel) each(fn func(int)) {
	p.fn = fn
	for _, c := range p.start {
		c <- struct{}{}
	}
	fn(0)
	for range p.start {
		<-p.done
	}
	p.fn = nil
}

// process places the batch's flows on e's clocks, recording the steps the
// workers then evaluate.
func (p *parallel) process(e *Engine, batch []flow.Flow) {
	if p.enricher != nil {
		for i := range batch {
			p.enricher.Enrich(&batch[i])
		}
	}
	e.flows.Add(uint64(len(batch)))
	if cap(p.held) < len(batch)+holdFlows {
		p.held = make([]flow.Flow, 0, len(batch)+holdFlows)
	}
	for i := range batch {
		p.cur = &batch[i]
		e.process(p.cur)
	}
	p.cur = nil
	if e.heldN > 0 {
		e.release(nil)
	}
	p.wm, p.started = e.watermark, e.started
	p.publish()
	switch {
	case len(p.steps) >= parallelMin && !e.caughtUp:
		p.sideBySide++
		p.each(p.run)
	default:
		for i := range p.kids {
			p.evaluate(i)
		}
	}
	clear(p.steps)
	p.steps = p.steps[:0]
	clear(p.held)
	p.held = p.held[:0]
	p.flush()
}

// record is e.evaluate of the outer engine: f is evaluated at now, with
// the watermark at wm. A held flow is copied, as its place is reused.
func (p *parallel) record(f *flow.Flow, src *sourceClock, now, wm int64) {
	if f != p.cur {
		p.held = append(p.held, *f)
		f = &p.held[len(p.held)-1]
	}
	if src != p.lastSrc {
		i, ok := p.srcs[src]
		if !ok {
			i = len(p.srcs)
			p.srcs[src] = i
		}
		p.lastSrc, p.lastIdx = src, i
	}
	p.steps = append(p.steps, step{f: f, now: now, wm: wm, src: p.lastIdx})
}

// publish gives every worker a clock of each source numbered since.
func (p *parallel) publish() {
	old := p.shadows.Load()
	if len(old.of) == len(p.srcs) {
		return
	}
	sh := &shadows{of: make([]*sourceClock, len(p.srcs)), kids: make([][]*sourceClock, len(p.kids))}
	for src, j := range p.srcs {
		sh.of[j] = src
	}
	for i := range sh.kids {
		sh.kids[i] = append(slices.Clone(old.kids[i]), make([]*sourceClock, len(p.srcs)-len(old.of))...)
		for j := len(old.of); j < len(p.srcs); j++ {
			sh.kids[i][j] = &sourceClock{id: sh.of[j].id}
		}
	}
	p.shadows.Store(sh)
}

// evaluate runs the batch's steps on worker i, then leaves its clock where
// the outer engine's is.
func (p *parallel) evaluate(i int) {
	k, clocks := p.kids[i], p.shadows.Load().kids[i]
	for j := range p.steps {
		st := &p.steps[j]
		k.watermark, k.started = st.wm, true
		k.evaluate(st.f, clocks[st.src], st.now)
	}
	k.evalSegment()
	k.publish()
	k.watermark, k.started = p.wm, p.started
}

// exchange runs the workers' exchanges one after the other: they may
// enrich a flow rebuilt from a group key, and the enricher is the
// caller's goroutine's.
func (p *parallel) exchange() int {
	n := 0
	for _, k := range p.kids {
		n += k.Exchange()
	}
	p.flush()
	return n
}

// flush emits the alerts the workers held, in one engine's order.
func (p *parallel) flush() {
	m := p.merged[:0]
	for i := range p.out {
		m = append(m, p.out[i]...)
		clear(p.out[i])
		p.out[i] = p.out[i][:0]
	}
	if len(p.kids) > 1 {
		slices.SortStableFunc(m, func(a, b pending) int {
			return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.rule, b.rule))
		})
	}
	for _, x := range m {
		p.emit(x.a)
	}
	clear(m)
	p.merged = m[:0]
}

// reload splits the new set over the workers. When a worker fails, those
// reloaded before it get their rules back and the error is returned.
func (p *parallel) reload(set *rules.Set) error {
	sets, owners, order := p.assign(set)
	for i, k := range p.kids {
		if err := k.Reload(sets[i]); err != nil {
			for j := range i {
				p.kids[j].Reload(p.sets[j])
			}
			return err
		}
	}
	p.sets, p.owners = sets, owners
	p.order.Store(&order)
	p.flush() // the resolutions of changed and removed rules
	return nil
}

// saveLearned joins what the workers' learning rules learned, in the set's
// order.
func (p *parallel) saveLearned() *LearnedState {
	st := p.kids[0].SaveLearned()
	for _, k := range p.kids[1:] {
		st.Rules = append(st.Rules, k.SaveLearned().Rules...)
	}
	order := *p.order.Load()
	slices.SortStableFunc(st.Rules, func(a, b LearnedRule) int { return cmp.Compare(order[a.ID], order[b.ID]) })
	return st
}

// loadLearned hands st to every worker: each takes its own rules' part.
func (p *parallel) loadLearned(st *LearnedState) int {
	n := 0
	for _, k := range p.kids {
		n += k.LoadLearned(st)
	}
	return n
}

// owner returns the worker that holds rule id (the first when none does).
func (p *parallel) owner(id string) *Engine {
	return p.kids[p.owners[id]]
}

// stats joins the workers' figures: flows and clocks are the outer
// engine's (the watermark as of the first worker's last sweep, as one
// engine gives it), rules come back in the set's order. A source's Late
// counts the flows late for a rule of one worker, the most of any worker:
// a lower bound of the flows late for some rule.
func (p *parallel) stats(e *Engine) Stats {
	s := p.kids[0].Stats()
	s.Flows, s.NoTime = e.flows.Load(), e.dropped.Load()
	s.Time = e.timeStats()
	s.Time.Watermark = s.EventNow
	order := *p.order.Load()
	for _, k := range p.kids[1:] {
		s.Rules = append(s.Rules, k.Stats().Rules...)
	}
	sh := p.shadows.Load()
	if list := e.publishedSources.Load(); list != nil && len(sh.of) > 0 {
		at := make(map[*sourceClock]int, len(sh.of))
		for j, src := range sh.of {
			at[src] = j
		}
		s.Time.Late = 0
		for i, src := range *list {
			if j, ok := at[src]; ok && i < len(s.Time.Sources) {
				late := uint64(0)
				for _, clocks := range sh.kids {
					late = max(late, clocks[j].late.Load())
				}
				s.Time.Sources[i].Late = late
			}
			s.Time.Late += s.Time.Sources[i].Late
		}
	}
	slices.SortStableFunc(s.Rules, func(a, b RuleStats) int { return cmp.Compare(order[a.ID], order[b.ID]) })
	return s
}
