package engine

import (
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// rounds replays a benchmark's flows round after round in batches, each
// round's event times shifted by the flows' span plus a gap, so that the
// windows keep sliding as on a live feed.
type rounds struct {
	flows []flow.Flow
	batch []flow.Flow
	span  time.Duration
	round int
}

func newRounds(flows []flow.Flow, batch int, gap time.Duration) *rounds {
	return &rounds{flows: flows, batch: make([]flow.Flow, batch),
		span: flows[len(flows)-1].TimeFlowEnd.Sub(flows[0].TimeFlowEnd) + gap}
}

// pass processes up to limit flows of the next round through e and
// returns how many it processed.
func (r *rounds) pass(e *Engine, limit int) int {
	done := 0
	shift := time.Duration(r.round) * r.span
	for j := 0; j < len(r.flows) && done < limit; j += len(r.batch) {
		n := min(copy(r.batch, r.flows[j:]), limit-done)
		for k := range r.batch[:n] {
			f := &r.batch[k]
			f.TimeFlowEnd = f.TimeFlowEnd.Add(shift)
			f.TimeFlowStart = f.TimeFlowStart.Add(shift)
			f.TimeReceived = f.TimeReceived.Add(shift)
		}
		e.Process(r.batch[:n])
		done += n
	}
	r.round++
	return done
}

// run processes n flows through e, round after round.
func (r *rounds) run(e *Engine, n int) {
	for i := 0; i < n; {
		i += r.pass(e, n-i)
	}
}

// measure runs the benchmark's b.N flows through e, round after round, and
// reports flows/s (wall clock) and the process's CPU time per flow (user
// and system, every worker's: what a flow costs whatever else runs).
func (r *rounds) measure(b *testing.B, e *Engine) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	r.run(e, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/flow")
}
