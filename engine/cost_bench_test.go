package engine

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Cost curves (README "Performance"): flows/s and memory against the
// number of rules, of live groups and of workers. The worker counts come
// from -engine.workers (default 1,2), so that bigger machines can run more:
//
//	go test -run '^$' -bench 'Cost' -benchtime 2000000x ./engine -args -engine.workers 1,2,4,8
var benchWorkers = flag.String("engine.workers", "1,2", "worker counts the cost benchmarks run, comma-separated")

func workerCounts(b *testing.B) []int {
	var out []int
	for _, s := range strings.Split(*benchWorkers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			b.Fatalf("-engine.workers: %q is not a count", s)
		}
		out = append(out, n)
	}
	return out
}

// syntheticRules returns n rules in the bundled pack's proportions: a
// third counting flows, a third distinct counts, a sixth sums of bytes and
// a sixth per-flow matches, grouped by source or destination. Each rule's
// condition takes a band of width of the 1024 destination ports the flows
// use (and a protocol or a flag): with width 100 a rule matches 7 to 10% of
// the flows, as detection rules match a share of the traffic.
func syntheticRules(b *testing.B, n, width int) *rules.Set {
	var sb strings.Builder
	sb.WriteString("rules:\n")
	for i := range n {
		lo := i * 97 % (1025 - width)
		band := fmt.Sprintf("dst_port >= %d && dst_port < %d", lo, lo+width)
		fmt.Fprintf(&sb, "  - id: r%d\n    severity: low\n", i)
		switch i % 6 {
		case 0, 1:
			fmt.Fprintf(&sb, "    where: \"proto == 6 && %s\"\n    count: flows\n    group_by: [src_addr]\n    window: 1m\n    threshold: 1e12\n", band)
		case 2, 3:
			fmt.Fprintf(&sb, "    where: \"syn && %s\"\n    distinct: dst_port\n    group_by: [src_addr]\n    window: 1m\n    threshold: 1e9\n", band)
		case 4:
			fmt.Fprintf(&sb, "    where: \"%s\"\n    sum: bytes\n    group_by: [dst_addr]\n    window: 1m\n    threshold: 1e15\n", band)
		case 5:
			fmt.Fprintf(&sb, "    where: \"proto == 47 && %s\"\n", band)
		}
	}
	set, err := rules.LoadBytes("synthetic.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// groupFlows returns n flows whose sources (and destinations) are drawn
// from groups addresses, one every 10 µs of event time.
func groupFlows(n, groups int) []flow.Flow {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]flow.Flow, n)
	for i := range out {
		f := &out[i]
		at := t0.Add(time.Duration(i) * 10 * time.Microsecond)
		f.Type = flow.TypeNetFlowV9
		f.TimeFlowStart, f.TimeFlowEnd, f.TimeReceived = at.Add(-time.Second), at, at
		f.SamplingRate = 1
		g := r.IntN(groups)
		f.SrcAddr = netip.AddrFrom4([4]byte{10, byte(g >> 16), byte(g >> 8), byte(g)})
		g = r.IntN(groups)
		f.DstAddr = netip.AddrFrom4([4]byte{172, 16 + byte(g>>16), byte(g >> 8), byte(g)})
		if r.IntN(4) == 0 {
			f.SetProto(flow.ProtoUDP)
		} else {
			f.SetProto(flow.ProtoTCP)
			f.SetTCPFlags(flow.TCPSyn)
		}
		f.SrcPort, f.DstPort = uint16(32768+r.IntN(28000)), uint16(r.IntN(1024))
		f.RawPackets, f.RawBytes = 3, 600
		f.Renormalise()
	}
	return out
}

// benchCost runs set over flows with w workers after a warm-up pass that
// fills the windows, shifting event time each round so that windows keep
// sliding; it reports flows/s (wall clock), the process's CPU time per
// flow (user and system, every worker's: what the flows cost whatever else
// the machine runs) and the heap the engine holds.
func benchCost(b *testing.B, set *rules.Set, flows []flow.Flow, w int) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e, err := New(Config{Workers: w, MaxKeys: 2 << 20}, set)
	if err != nil {
		b.Fatal(err)
	}
	r := newRounds(flows, PipelineChunk, time.Second)
	r.pass(e, len(flows))
	runtime.GC()
	runtime.ReadMemStats(&after)
	r.measure(b, e)
	b.ReportMetric(float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))/(1<<20), "heap-MiB")
	runtime.KeepAlive(e)
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCostRules: 10, 50 and 200 rules over 1k live groups.
func BenchmarkCostRules(b *testing.B) {
	flows := groupFlows(1<<18, 1000)
	for _, n := range []int{10, 50, 200} {
		set := syntheticRules(b, n, 100)
		for _, w := range workerCounts(b) {
			b.Run(fmt.Sprintf("rules=%d/workers=%d", n, w), func(b *testing.B) { benchCost(b, set, flows, w) })
		}
	}
}

// BenchmarkCostGroups: 10 rules over 1k, 100k and 1M live groups: the
// rules match every port (the per-flow ones none), so that after the
// warm-up (3 flows per group) each window holds about that many keys.
func BenchmarkCostGroups(b *testing.B) {
	set := syntheticRules(b, 10, 1024)
	for _, g := range []int{1000, 100000, 1000000} {
		flows := groupFlows(max(1<<18, 3*g), g)
		for _, w := range workerCounts(b) {
			b.Run(fmt.Sprintf("groups=%d/workers=%d", g, w), func(b *testing.B) { benchCost(b, set, flows, w) })
		}
	}
}

// BenchmarkCostPack: the bundled pack over the realistic mix.
func BenchmarkCostPack(b *testing.B) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		b.Fatal(err)
	}
	flows := realisticFlows(1 << 16)
	for _, w := range workerCounts(b) {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) { benchCost(b, set, flows, w) })
	}
}
