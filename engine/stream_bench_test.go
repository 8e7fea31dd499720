package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/rules"
)

// BenchmarkEngineStreamPack runs the bundled pack over the flows `make
// bench-e2e` sends (gen's stream mix, stamped at 1.2M flows/s of event
// time), in batches of 256 as the pipeline hands them over: the engine's
// share of the end-to-end cost per flow.
func BenchmarkEngineStreamPack(b *testing.B) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		b.Fatal(err)
	}
	const rate = 1.2e6
	flows := gen.StreamMix(1, 50000, 1<<18, rate, t0)
	span := flows[len(flows)-1].TimeFlowEnd.Sub(flows[0].TimeFlowEnd) + time.Second/1200000
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e, err := New(Config{Workers: workers}, set)
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]flow.Flow, 256)
			e.Process(flows[:1<<16]) // warm the windows
			round := 0
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; round++ {
				shift := time.Duration(round+1) * span
				for j := 0; j < len(flows) && i < b.N; j += len(batch) {
					n := min(copy(batch, flows[j:]), b.N-i)
					for k := range batch[:n] {
						f := &batch[k]
						f.TimeFlowEnd = f.TimeFlowEnd.Add(shift)
						f.TimeFlowStart = f.TimeFlowStart.Add(shift)
						f.TimeReceived = f.TimeReceived.Add(shift)
					}
					e.Process(batch[:n])
					i += n
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/flow")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}
