// Package tuning turns a replay into advice on thresholds. A Collector sees
// every value an aggregate rule computes (engine.Config.Observe) and every
// alert (from engine.Config.Emit); its Report tells, per rule, what fired,
// how high the groups that did not fire came (the near misses), how the
// groups' peak values are spread, and a threshold that keeps the background
// of this input quiet while the groups that fired still fire.
//
// Memory is bounded: per rule at most Config.MaxGroups groups are tracked,
// by their peak value, and the smallest is evicted to make room for a
// larger one. Observe costs a hash, a map lookup and, when a group's peak
// rises, a heap fix; it allocates nothing once a group is tracked.
package tuning

import (
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxGroups  = 10000
	DefaultNearMisses = 5
	DefaultMaxFired   = 10
)

// Config sizes a Collector. Zero fields take their defaults.
type Config struct {
	// MaxGroups caps the groups tracked per rule (DefaultMaxGroups).
	MaxGroups int
	// NearMisses is how many of the highest groups that did not fire the
	// report names per rule (DefaultNearMisses).
	NearMisses int
	// MaxFired is how many of the groups that fired the report names per
	// rule, highest first (DefaultMaxFired); all are counted.
	MaxFired int
	// MinLowerSpan is the shortest input (time from its first to its last
	// flow) from which a threshold is suggested lower; on a shorter one the
	// current threshold is kept and the report says why
	// (DefaultMinLowerSpan; negative: any span).
	MinLowerSpan time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxGroups <= 0 {
		c.MaxGroups = DefaultMaxGroups
	}
	if c.NearMisses <= 0 {
		c.NearMisses = DefaultNearMisses
	}
	if c.MaxFired <= 0 {
		c.MaxFired = DefaultMaxFired
	}
	if c.MinLowerSpan == 0 {
		c.MinLowerSpan = DefaultMinLowerSpan
	}
	return c
}

// Collector gathers what a Report needs. Observe and OnAlert must be called
// from the engine's goroutine (they are the engine's hooks); Report may be
// called once the engine is done, or between batches.
type Collector struct {
	cfg    Config
	truth  *Scorer // nil without SetTruth
	byRule map[*rules.Rule]*track
	byID   map[string]*track
	order  []*track
}

// track is one rule's state.
type track struct {
	r *rules.Rule

	observations uint64
	alerts       uint64

	// heap is a min-heap of the tracked groups by peak value; pos maps a
	// group's key hash to its index in heap.
	heap      []entry
	pos       map[uint64]int32
	evicted   uint64 // groups pushed out by higher ones
	untracked uint64 // values of groups too low to be tracked

	// last is the hash of the group last observed. The engine emits an
	// alert right after the Observe of the flow that fired it, so OnAlert
	// attributes the alert to this group.
	last    uint64
	hasLast bool

	fired      map[uint64]*firedGroup
	firedCount int // distinct groups that fired, also past the cap of fired

	// near holds the highest groups that have not fired, highest first,
	// with their rendered group values. It is a little longer than the
	// report's list so that a group that fires later leaves a spare.
	near []nearMiss
}

type entry struct {
	hash uint64
	peak float64
}

type firedGroup struct {
	group  map[string]string
	alerts uint64
	value  float64 // the highest value an alert carried
}

type nearMiss struct {
	hash uint64
	peak float64
	text []byte // field values, back to back
	ends []int  // end offset of each field's value in text
}

// New returns a Collector for the rules of set.
func New(set *rules.Set, cfg Config) *Collector {
	c := &Collector{
		cfg:    cfg.withDefaults(),
		byRule: make(map[*rules.Rule]*track, len(set.Rules)),
		byID:   make(map[string]*track, len(set.Rules)),
	}
	for _, r := range set.Rules {
		t := &track{r: r}
		c.byRule[r] = t
		c.byID[r.ID] = t
		c.order = append(c.order, t)
	}
	return c
}

// SetTruth makes the report compare the alerts with t (see TruthReport).
func (c *Collector) SetTruth(t *Truth) { c.truth = NewScorer(t) }

// Observe records one value of an aggregate rule for a group; it has the
// signature of engine.Config.Observe. group is not kept; f is read only
// when the group becomes one of the rule's highest that have not fired.
func (c *Collector) Observe(r *rules.Rule, group []byte, value float64, f *flow.Flow) {
	t := c.byRule[r]
	if t == nil {
		t = &track{r: r}
		c.byRule[r] = t
		c.byID[r.ID] = t
		c.order = append(c.order, t)
	}
	t.observations++
	h := xxhash.Sum64(group)
	t.last, t.hasLast = h, true
	if t.pos == nil {
		t.pos = make(map[uint64]int32, min(c.cfg.MaxGroups, 1024))
		t.heap = make([]entry, 0, min(c.cfg.MaxGroups, 1024))
	}
	if i, ok := t.pos[h]; ok {
		if value <= t.heap[i].peak {
			return
		}
		t.heap[i].peak = value
		t.down(int(i))
	} else if len(t.heap) < c.cfg.MaxGroups {
		t.heap = append(t.heap, entry{hash: h, peak: value})
		t.pos[h] = int32(len(t.heap) - 1)
		t.up(len(t.heap) - 1)
	} else if value > t.heap[0].peak {
		delete(t.pos, t.heap[0].hash)
		t.evicted++
		t.heap[0] = entry{hash: h, peak: value}
		t.pos[h] = 0
		t.down(0)
	} else {
		// Not among the MaxGroups highest: it cannot be a near miss.
		t.untracked++
		return
	}
	c.near(t, h, value, f)
}

// near keeps t.near, the highest groups that have not fired.
func (c *Collector) near(t *track, h uint64, value float64, f *flow.Flow) {
	limit := c.cfg.NearMisses + 3
	n := len(t.near)
	if n == limit && value <= t.near[n-1].peak {
		return
	}
	if len(t.fired) > 0 {
		if _, ok := t.fired[h]; ok {
			return
		}
	}
	i := 0
	for i < n && t.near[i].hash != h {
		i++
	}
	switch {
	case i < n: // known: raise it
		if value <= t.near[i].peak {
			return
		}
		t.near[i].peak = value
	case n < limit: // room for one more
		t.near = append(t.near, nearMiss{})
		i = n
		t.near[i] = nearMiss{hash: h, peak: value}
		t.render(&t.near[i], f)
	default: // replace the lowest, reusing its buffers
		i = n - 1
		t.near[i].hash, t.near[i].peak = h, value
		t.render(&t.near[i], f)
	}
	for ; i > 0 && t.near[i].peak > t.near[i-1].peak; i-- {
		t.near[i], t.near[i-1] = t.near[i-1], t.near[i]
	}
}

func (t *track) render(m *nearMiss, f *flow.Flow) {
	m.text, m.ends = m.text[:0], m.ends[:0]
	for _, fd := range t.r.GroupBy {
		m.text = fd.AppendText(m.text, f)
		m.ends = append(m.ends, len(m.text))
	}
}

// OnAlert records an alert. Call it from engine.Config.Emit: for an
// aggregate rule the alert belongs to the group of the rule's latest
// Observe, which is the flow that fired it.
func (c *Collector) OnAlert(a *alert.Alert) {
	if c.truth != nil {
		c.truth.OnAlert(a)
	}
	t := c.byID[a.Rule]
	if t == nil {
		t = &track{r: &rules.Rule{ID: a.Rule}}
		c.byID[a.Rule] = t
		c.order = append(c.order, t)
	}
	t.alerts++
	var h uint64
	if t.r.Aggregate != rules.PerFlow && t.hasLast {
		h = t.last
	} else {
		h = xxhash.Sum64String(a.GroupString())
	}
	if t.fired == nil {
		t.fired = map[uint64]*firedGroup{}
	}
	fg := t.fired[h]
	if fg == nil {
		t.firedCount++
		// Past the cap, fired groups are counted but not named; the
		// near-miss list still excludes the ones it knows.
		if len(t.fired) >= c.cfg.MaxGroups {
			t.dropNear(h)
			return
		}
		fg = &firedGroup{group: make(map[string]string, len(a.Group))}
		for k, v := range a.Group {
			fg.group[k] = fmt.Sprint(v)
		}
		t.fired[h] = fg
	}
	fg.alerts++
	fg.value = max(fg.value, a.Value)
	t.dropNear(h)
}

func (t *track) dropNear(h uint64) {
	for i := range t.near {
		if t.near[i].hash == h {
			t.near = append(t.near[:i], t.near[i+1:]...)
			return
		}
	}
}

// peakOf returns a tracked group's peak value.
func (t *track) peakOf(h uint64) (float64, bool) {
	i, ok := t.pos[h]
	if !ok {
		return 0, false
	}
	return t.heap[i].peak, true
}

func (t *track) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.heap[p].peak <= t.heap[i].peak {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *track) down(i int) {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.heap[r].peak < t.heap[l].peak {
			m = r
		}
		if t.heap[i].peak <= t.heap[m].peak {
			return
		}
		t.swap(i, m)
		i = m
	}
}

func (t *track) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.pos[t.heap[i].hash] = int32(i)
	t.pos[t.heap[j].hash] = int32(j)
}
