package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowguard/flowguard/examples"
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
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e, err := New(Config{Workers: workers}, set)
			if err != nil {
				b.Fatal(err)
			}
			r := newRounds(flows, PipelineChunk, time.Second/rate)
			r.pass(e, 1<<16) // warm the windows
			r.measure(b, e)
		})
	}
}
