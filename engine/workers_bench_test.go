package engine

import (
	"fmt"
	"testing"
)

// Workers' hand-over (README "Engine workers"): what handing a batch to
// the workers and waiting for them costs, apart from the rules.

// BenchmarkWorkersEach: one hand-over of nothing to every worker and the
// wait for them, per op: the fixed cost each batch of 128 flows or more
// pays on top of its rules.
func BenchmarkWorkersEach(b *testing.B) {
	for _, w := range []int{2, 4} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			e, err := New(Config{Workers: w}, syntheticRules(b, w, 100))
			if err != nil {
				b.Fatal(err)
			}
			fn := func(int) {}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				e.par.each(fn)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkWorkersTrivial: rules that match no flow (proto 255), in the
// pipeline's batches: the clocks every worker keeps and the hand-over, per
// flow, with nothing else to share.
func BenchmarkWorkersTrivial(b *testing.B) {
	set := mustRules(b, `rules:
  - id: a
    severity: low
    where: "proto == 255"
    count: flows
    group_by: [src_addr]
    window: 1m
    threshold: 1000
  - id: b
    severity: low
    where: "proto == 255"
    count: flows
    group_by: [dst_addr]
    window: 1m
    threshold: 1000
`)
	flows := groupFlows(1<<16, 1000)
	for _, w := range workerCounts(b) {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) { benchCost(b, set, flows, w) })
	}
}
