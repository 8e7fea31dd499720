// Package admit decides which unknown sources (exporters, sFlow agents) a
// decoder keeps state for. A decoder's table of sources is bounded; without
// a policy the first sources to arrive keep their slots, so a storm of
// spoofed source addresses fills the table and every source that comes
// after it, genuine or not, is refused.
//
// The Gate admits new sources within a rate (a token bucket on the
// datagrams' clock) and keeps them on probation, oldest first, until the
// decoder marks them established (a valid template or record came from
// them). When the table is full, the oldest source still on probation makes
// room; an established source is never evicted for a new one.
package admit

import "sync/atomic"

// Defaults for Config's zero values.
const (
	// DefaultRate is how many new sources per second are admitted. A
	// collector restarting in front of 1,000 exporters admits them all
	// within the burst; a storm of spoofed sources gets 200 a second.
	DefaultRate = 200
	// DefaultBurst is how many new sources may be admitted at once.
	DefaultBurst = 1000
)

// Config sets the admission rate.
type Config struct {
	Rate  float64 // new sources per second (DefaultRate when 0; negative: no limit)
	Burst int     // bucket size (DefaultBurst when 0)
}

// Outcome is what Admit decided.
type Outcome uint8

// Admit's outcomes.
const (
	Admitted  Outcome = iota
	Rate              // refused: the admission rate is spent
	TableFull         // refused: the table is full of established sources
)

// Gate admits new sources; it is used from the decoder's goroutine only,
// except for the counters.
type Gate[K comparable] struct {
	rate, burst float64
	tokens      float64
	last        int64 // ns of the last refill
	probation   []K   // admitted on probation, oldest first; may hold keys since established or removed
	head        int

	// RateRefused and TableFullRefused count refusals; safe to read from
	// any goroutine.
	RateRefused, TableFullRefused atomic.Uint64
	// Evicted counts sources on probation evicted to make room.
	Evicted atomic.Uint64
}

// New returns a Gate with a full bucket.
func New[K comparable](cfg Config) *Gate[K] {
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	return &Gate[K]{rate: cfg.Rate, burst: float64(cfg.Burst), tokens: float64(cfg.Burst)}
}

// refill adds the tokens earned since the last call. now is the datagrams'
// clock in ns; a clock that goes back earns nothing.
func (g *Gate[K]) refill(now int64) {
	if g.rate < 0 {
		return
	}
	if g.last == 0 || now < g.last {
		g.last = now
		return
	}
	g.tokens = min(g.burst, g.tokens+float64(now-g.last)*g.rate/1e9)
	g.last = now
}

// Admit decides whether the new source k gets state. size is the table's
// size now and max its bound; when it is full, evict is called with the
// oldest sources on probation until it removes one (it returns false for a
// source since established or already gone). An admitted source goes on
// probation.
func (g *Gate[K]) Admit(k K, now int64, size, max int, evict func(K) bool) Outcome {
	g.refill(now)
	if g.rate >= 0 && g.tokens < 1 {
		g.RateRefused.Add(1)
		return Rate
	}
	for size >= max && g.head < len(g.probation) {
		victim := g.probation[g.head]
		var zero K
		g.probation[g.head] = zero
		g.head++
		if evict(victim) {
			g.Evicted.Add(1)
			size--
		}
	}
	g.compact()
	if size >= max {
		g.TableFullRefused.Add(1)
		return TableFull
	}
	if g.rate >= 0 {
		g.tokens--
	}
	g.probation = append(g.probation, k)
	return Admitted
}

// compact drops the evicted head of the probation queue once it is half
// of it, so the queue's memory follows what it holds.
func (g *Gate[K]) compact() {
	if g.head > 0 && g.head >= len(g.probation)/2 {
		n := copy(g.probation, g.probation[g.head:])
		clear(g.probation[n:])
		g.probation = g.probation[:n]
		g.head = 0
	}
}

// Prune keeps on the probation queue only the sources still on probation
// (onProbation true); the decoder calls it when it sweeps idle sources, so
// the queue never outgrows the table.
func (g *Gate[K]) Prune(onProbation func(K) bool) {
	n := 0
	for _, k := range g.probation[g.head:] {
		if onProbation(k) {
			g.probation[n] = k
			n++
		}
	}
	clear(g.probation[n:])
	g.probation = g.probation[:n]
	g.head = 0
}

// OnProbation returns how many sources the probation queue holds (some may
// have been established since).
func (g *Gate[K]) OnProbation() int { return len(g.probation) - g.head }
