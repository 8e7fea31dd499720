package engine

import (
	"context"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/rules"
)

// A source handing over one huge batch (65,480 flows, what one hostile
// NetFlow v9 datagram used to give) while the engine is busy finds the
// queue bounded in flows: it holds at most depth chunks of PipelineChunk
// flows, and the source waits; once the engine is free every flow is
// processed.
func TestPipelineBoundedInFlows(t *testing.T) {
	e, err := New(Config{}, &rules.Set{})
	if err != nil {
		t.Fatal(err)
	}
	const depth, hostile = 4, 65480
	p := NewPipeline(e, depth)
	stop := runPipeline(p)
	release := holdEngine(p)
	batch := make([]flow.Flow, hostile)
	handed := make(chan struct{})
	go func() { p.Handle(batch); close(handed) }()

	// Run takes one chunk and waits for the engine (unless its exchange
	// tick came first and it waits in Do without one); depth more fill the
	// queue; then Handle waits.
	full, bound := uint64(depth*PipelineChunk), uint64((depth+1)*PipelineChunk)
	deadline := time.Now().Add(5 * time.Second)
	for p.Queued() < full && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for Handle to overrun the bound, were it not held
	if q := p.Queued(); q < full || q > bound {
		t.Fatalf("%d flows queued while the engine was busy, want %d to %d", q, full, bound)
	}
	if now, _ := p.Depth(); now > depth {
		t.Fatalf("queue depth %d > %d", now, depth)
	}
	select {
	case <-handed:
		t.Fatal("Handle returned with the queue full")
	default:
	}
	if p.Waits() == 0 {
		t.Error("the queue was full and no wait was counted")
	}
	release()
	<-handed
	stop()
	if got := e.Stats().Flows; got != hostile {
		t.Fatalf("engine processed %d flows, want %d", got, hostile)
	}
}

// BenchmarkPipeline hands batches of 256 flows (what a listener hands
// over) through the queue to an engine without rules: the queue's own
// cost per flow (BenchmarkEngineExamplePack measures the rules').
func BenchmarkPipeline(b *testing.B) {
	flows := realisticFlows(1 << 12)
	e, err := New(Config{}, &rules.Set{})
	if err != nil {
		b.Fatal(err)
	}
	e.Process(flows)
	p := NewPipeline(e, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		j := (n * 256) % len(flows)
		p.Handle(flows[j : j+256])
		n++
	}
	cancel()
	<-done
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*256), "ns/flow")
}

// With the engine idle and nothing queued, Handle processes a chunk
// itself; a chunk handed over while another waits in the queue waits too,
// so that each source's flows are processed in its order.
func TestPipelineDirectKeepsOrder(t *testing.T) {
	set := mustRules(t, `
rules:
  - id: each
    severity: low
    where: "dst_port > 0"
    group_by: [dst_port]
`)
	var ports []uint16
	e, err := New(Config{Emit: func(a *alert.Alert) { ports = append(ports, a.Samples[0].DstPort) }}, set)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(e, 16)
	chunk := func(from int) []flow.Flow {
		var b []flow.Flow
		for i := from; i < from+10; i++ {
			b = append(b, synFlow("10.0.0.1", "10.0.0.2", uint16(i), t0.Add(time.Duration(i)*time.Millisecond)))
		}
		return b
	}
	// Run is not started: an idle engine takes the chunk in Handle.
	p.Handle(chunk(1))
	if p.Direct() != 1 || len(ports) != 10 {
		t.Fatalf("%d chunks processed directly, %d flows alerted; want 1 and 10", p.Direct(), len(ports))
	}
	// Busy engine: the chunk is queued; the next one queues behind it
	// although the engine is free again by then.
	release := holdEngine(p)
	p.Handle(chunk(11))
	release()
	p.Do(func(*Engine) {}) // the engine is free
	p.Handle(chunk(21))
	if p.Direct() != 1 {
		t.Fatalf("a chunk overtook the queue: %d processed directly", p.Direct())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run drains the queue and returns
	p.Run(ctx)
	if len(ports) != 30 {
		t.Fatalf("%d flows alerted, want 30", len(ports))
	}
	for i, port := range ports {
		if int(port) != i+1 {
			t.Fatalf("flows out of order: %v", ports)
		}
	}
}

// HandleOwned takes the pooled buffers Buffer lends without a copy, and a
// buffer a source outgrew (appending past PipelineChunk) in chunks; every
// flow is processed once, in order.
func TestPipelineHandleOwned(t *testing.T) {
	flows := realisticFlows(1000)
	e, err := New(Config{}, &rules.Set{})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(e, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	sent := 0
	for _, n := range []int{0, 10, PipelineChunk, PipelineChunk + 1, 3*PipelineChunk + 7} {
		b := p.Buffer()
		if len(*b) != 0 || cap(*b) < PipelineChunk {
			t.Fatalf("Buffer: len %d cap %d", len(*b), cap(*b))
		}
		*b = append(*b, flows[:n]...)
		p.HandleOwned(b)
		sent += n
	}
	cancel()
	<-done
	if got := e.Stats().Flows; got != uint64(sent) {
		t.Fatalf("engine processed %d flows, want %d", got, sent)
	}
	if q := p.Queued(); q != uint64(sent) {
		t.Fatalf("Queued %d, want %d", q, sent)
	}
}

// The workers take batches side by side only from a backlog of
// backlogSideBySide chunks, and keep on until the queue is empty: a few
// chunks queued behind a busy engine are taken in turn.
func TestPipelineSideBySideFromBacklog(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	flows := gen.StreamMix(5, 5000, 64*PipelineChunk, 1e5, t0)
	for _, queued := range []int{backlogSideBySide, 3 * backlogSideBySide} {
		e, err := New(Config{Workers: 2}, set)
		if err != nil {
			t.Fatal(err)
		}
		p := NewPipeline(e, 0)
		stop := runPipeline(p)
		release := holdEngine(p)
		p.Handle(flows[:queued*PipelineChunk]) // one chunk taken by Run, the rest waiting behind it
		release()
		for p.inflight.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
		stop()
		// Run's first chunk sees queued-1 behind it.
		want := uint64(0)
		if queued-1 >= backlogSideBySide {
			want = uint64(queued - 1) // all but the last, which finds the queue empty
		}
		if got := e.par.sideBySide; got != want {
			t.Errorf("%d chunks queued: %d side by side, want %d", queued, got, want)
		}
	}
}

// runPipeline runs p until the returned stop, which returns once Run has
// drained the queue and returned.
func runPipeline(p *Pipeline) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()
	return func() { cancel(); <-ran }
}

// holdEngine keeps p's engine busy (in Do) until the returned release.
func holdEngine(p *Pipeline) (release func()) {
	done, held := make(chan struct{}), make(chan struct{})
	go p.Do(func(*Engine) { close(held); <-done })
	<-held
	return func() { close(done) }
}
