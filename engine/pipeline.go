package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// Pipeline feeds an engine from several sources running on their own
// goroutines. Handle copies a batch into a pooled buffer and queues it; one
// goroutine (Run) processes the queue in order. The queue is bounded in
// flows, and so in bytes: a batch is queued in chunks of at most
// PipelineChunk flows, so depth batches hold at most depth*PipelineChunk
// flows (608 bytes each), whatever size of batch a source hands over.
// When the queue is full, Handle waits: the sources' socket buffers absorb
// bursts, and what the kernel then drops is counted there. Waiting, not
// dropping, keeps replays exact; a listener's goroutine waits only for the
// engine, which serves every listener's batches in turn.
//
// A source may instead decode straight into the pipeline's pooled buffers
// (Buffer, then HandleOwned: an ingest.Sink), and save the copy.
//
// When the engine is idle and nothing is queued, Handle processes the
// chunk itself, on the source's goroutine, instead of queueing it: handing
// a chunk to a parked Run costs a wake-up and two context switches, more
// than the engine's work on it below saturation. Batches are still
// processed one at a time and each source's in its order (a chunk goes
// the direct way only when no chunk is queued or being processed).
type Pipeline struct {
	eng   *Engine
	queue chan *[]flow.Flow
	pool  sync.Pool

	queued   atomic.Uint64
	inflight atomic.Int64  // chunks queued and not yet processed
	direct   atomic.Uint64 // chunks processed by Handle itself
	waits    atomic.Uint64 // chunks that found the queue full
	maxDepth atomic.Int64
	mu       sync.Mutex // guards Process against Do
	behind   bool       // Run's: a backlog set the workers side by side (process)

	exchangeEvery time.Duration
}

// backlogSideBySide is the backlog, in chunks queued behind the one being
// processed, from which the engine's workers take batches side by side
// (Engine.SetCaughtUp), until the queue is empty again. Side by side, a
// flow costs more CPU (a wake-up of each worker per batch, each core's
// caches apart): it pays only when the engine is the bottleneck and spare
// cores exist. A backlog of a chunk or two comes and goes at any rate, as
// the scheduler lends the engine's core to the sources' goroutines; one
// that keeps growing is the engine falling behind.
const backlogSideBySide = 8

// PipelineChunk is the most flows one queued batch holds.
const PipelineChunk = 256

// DefaultExchangeEvery is how often Run calls Engine.Exchange unless told
// otherwise: the Redis store's default flush interval.
const DefaultExchangeEvery = 200 * time.Millisecond

// ExchangeEvery sets how often Run calls Engine.Exchange, so that groups
// of shared windows crossing on other instances' totals fire without a
// further local flow (default DefaultExchangeEvery; the store's flush
// interval is the natural value). Call it before Run.
func (p *Pipeline) ExchangeEvery(d time.Duration) { p.exchangeEvery = d }

// NewPipeline returns a pipeline with room for depth batches of at most
// PipelineChunk flows.
func NewPipeline(eng *Engine, depth int) *Pipeline {
	if depth <= 0 {
		depth = 256
	}
	p := &Pipeline{eng: eng, queue: make(chan *[]flow.Flow, depth)}
	p.pool.New = func() any { b := make([]flow.Flow, 0, PipelineChunk); return &b }
	return p
}

// Handle is an ingest.Handler: safe for concurrent use by many sources.
func (p *Pipeline) Handle(batch []flow.Flow) {
	for len(batch) > 0 {
		n := min(len(batch), PipelineChunk)
		b := p.pool.Get().(*[]flow.Flow)
		*b = append((*b)[:0], batch[:n]...)
		p.hand(b)
		batch = batch[n:]
	}
}

// Buffer lends a pooled buffer (empty, room for PipelineChunk flows) for
// a source to decode into and give back with HandleOwned.
func (p *Pipeline) Buffer() *[]flow.Flow {
	b := p.pool.Get().(*[]flow.Flow)
	*b = (*b)[:0]
	return b
}

// HandleOwned takes a buffer from Buffer, filled, as Handle takes a batch
// but without copying it: the caller no longer touches it. A buffer
// outgrown past PipelineChunk flows is handed in chunks as Handle does.
// Safe for concurrent use by many sources.
func (p *Pipeline) HandleOwned(b *[]flow.Flow) {
	switch n := len(*b); {
	case n == 0:
		p.recycle(b)
	case n > PipelineChunk:
		p.Handle(*b) // it reallocated: the pool keeps buffers of its own size
	default:
		p.hand(b)
	}
}

// hand processes or queues one chunk of at most PipelineChunk flows.
func (p *Pipeline) hand(b *[]flow.Flow) {
	n := len(*b)
	if p.processIdle(b) {
		p.queued.Add(uint64(n))
		return
	}
	p.inflight.Add(1)
	select {
	case p.queue <- b:
	default:
		p.waits.Add(1)
		p.queue <- b
	}
	p.queued.Add(uint64(n))
	if d := int64(len(p.queue)); d > p.maxDepth.Load() {
		p.maxDepth.Store(d)
	}
}

// Run processes queued batches until ctx is done, then drains what is
// queued and returns.
func (p *Pipeline) Run(ctx context.Context) {
	every := p.exchangeEvery
	if every <= 0 {
		every = DefaultExchangeEvery
	}
	exchange := time.NewTicker(every)
	defer exchange.Stop()
	for {
		select {
		case b := <-p.queue:
			p.process(b)
		case <-exchange.C:
			p.Do(func(e *Engine) { e.Exchange() })
		case <-ctx.Done():
			for {
				select {
				case b := <-p.queue:
					p.process(b)
				default:
					p.Do(func(e *Engine) { e.Flush() })
					return
				}
			}
		}
	}
}

func (p *Pipeline) process(b *[]flow.Flow) {
	p.mu.Lock()
	switch waiting := p.inflight.Load() - 1; { // chunks queued behind b
	case waiting >= backlogSideBySide:
		p.behind = true
	case waiting <= 0:
		p.behind = false
	}
	p.eng.SetCaughtUp(!p.behind)
	p.eng.Process(*b)
	p.inflight.Add(-1)
	p.mu.Unlock()
	p.recycle(b)
}

// processIdle processes b on the caller's goroutine if the engine is idle
// and no chunk waits or is being processed, and reports whether it did.
func (p *Pipeline) processIdle(b *[]flow.Flow) bool {
	if p.inflight.Load() != 0 || !p.mu.TryLock() {
		return false
	}
	if p.inflight.Load() != 0 { // queued since: it goes first
		p.mu.Unlock()
		return false
	}
	p.eng.SetCaughtUp(true)
	p.eng.Process(*b)
	p.mu.Unlock()
	p.direct.Add(1)
	p.recycle(b)
	return true
}

func (p *Pipeline) recycle(b *[]flow.Flow) {
	*b = (*b)[:0]
	p.pool.Put(b)
}

// Do runs fn with the engine while no batch is being processed: for
// snapshots and swaps from other goroutines.
func (p *Pipeline) Do(fn func(*Engine)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.eng)
}

// Depth returns the batches waiting now and the most seen waiting.
func (p *Pipeline) Depth() (now, max int) {
	return len(p.queue), int(p.maxDepth.Load())
}

// Waits returns how many chunks found the queue full and waited: the
// engine was the bottleneck, and the listeners' socket buffers (then the
// kernel's drops) took the excess.
func (p *Pipeline) Waits() uint64 { return p.waits.Load() }

// Direct returns how many chunks Handle processed itself, the engine being
// idle.
func (p *Pipeline) Direct() uint64 { return p.direct.Load() }

// Queued returns the flows handed over since start, queued or processed
// by Handle.
func (p *Pipeline) Queued() uint64 { return p.queued.Load() }
