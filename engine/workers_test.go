package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/enrich/networks"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/ingest/file"
	"github.com/flowguard/flowguard/rules"
)

// captureFlows reads one of the committed captures (testdata/) into flows,
// metered as `flowguard replay` meters them.
func captureFlows(t testing.TB, name string) []flow.Flow {
	t.Helper()
	src, _, err := file.Open(filepath.Join("..", "testdata", name), file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []flow.Flow
	if err := src.Run(context.Background(), func(b []flow.Flow) { out = append(out, b...) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// replayWith runs flows through the bundled rules with n workers, in
// batches of size flows (the pipeline hands at most 256), and returns the
// alerts as JSON lines and the engine's rule counters.
func replayWith(t testing.TB, set *rules.Set, flows []flow.Flow, n, size int) ([]byte, Stats) {
	t.Helper()
	nets, err := networks.New(networks.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	e, err := New(Config{Workers: n, Enricher: nets, Emit: func(a *alert.Alert) {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}}, set)
	if err != nil {
		t.Fatal(err)
	}
	if got := max(1, len(e.kidsOrSelf())); n > 1 && got != min(n, len(set.Rules)) {
		t.Fatalf("%d workers asked, %d run", n, got)
	}
	in := slices.Clone(flows)
	for i := 0; i < len(in); i += size {
		e.Process(in[i:min(i+size, len(in))])
	}
	e.Exchange()
	e.Flush()
	return buf.Bytes(), e.Stats()
}

// kidsOrSelf returns the engines doing the work.
func (e *Engine) kidsOrSelf() []*Engine {
	if e.par != nil {
		return e.par.kids
	}
	return []*Engine{e}
}

// Replays of every committed capture through the bundled rules give the
// same alerts, byte for byte, and the same counters with 1, 2 and 4
// workers, in batches the workers take side by side (256) and in turn (100).
func TestWorkersReplayIdentical(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	captures, err := filepath.Glob(filepath.Join("..", "testdata", "*.pcap"))
	if err != nil || len(captures) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	total := 0
	inputs := map[string][]flow.Flow{"realistic-mix": realisticFlows(50000)}
	for _, path := range captures {
		inputs[filepath.Base(path)] = captureFlows(t, filepath.Base(path))
	}
	for name, flows := range inputs {
		t.Run(name, func(t *testing.T) {
			for _, size := range []int{PipelineChunk, 100} {
				one, st1 := replayWith(t, set, flows, 1, size)
				total += bytes.Count(one, []byte{'\n'})
				for _, n := range []int{2, 4} {
					got, st := replayWith(t, set, flows, n, size)
					if !bytes.Equal(got, one) {
						t.Errorf("%d workers, batches of %d: alerts differ from one engine's\n%s\nvs\n%s", n, size, got, one)
					}
					if a, b := fmt.Sprint(st.Rules), fmt.Sprint(st1.Rules); a != b {
						t.Errorf("%d workers, batches of %d: rule counters differ\n%s\nvs\n%s", n, size, a, b)
					}
					if st.Flows != st1.Flows || st.NoTime != st1.NoTime || st.EventNow != st1.EventNow {
						t.Errorf("%d workers, batches of %d: flows %d/%d, no time %d/%d, watermark %d/%d", n, size,
							st.Flows, st1.Flows, st.NoTime, st1.NoTime, st.EventNow, st1.EventNow)
					}
					if len(st.Time.Sources) != len(st1.Time.Sources) || st.Time.Future != st1.Time.Future ||
						st.Time.Watermark != st1.Time.Watermark || st.Time.Late > st1.Time.Late {
						t.Errorf("%d workers, batches of %d: clocks %+v\nvs one engine's %+v", n, size, st.Time, st1.Time)
					}
					for i := range min(len(st.Time.Sources), len(st1.Time.Sources)) {
						a, b := st.Time.Sources[i], st1.Time.Sources[i]
						if a.Late > b.Late { // the most of any worker: at most one engine's
							t.Errorf("%d workers: source %d late %d, one engine %d", n, i, a.Late, b.Late)
						}
						a.Late, b.Late = 0, 0
						if a != b {
							t.Errorf("%d workers: source %d %+v, one engine's %+v", n, i, a, b)
						}
					}
				}
			}
		})
	}
	if total == 0 {
		t.Fatal("no capture raised an alert: nothing compared")
	}
	t.Logf("%d alerts over %d captures and a generated mix", total, len(captures))
}

const otherRule = `
  - id: other
    severity: low
    where: "proto == 17"
    count: flows
    group_by: [src_addr]
    window: 1m
    threshold: 1000
`

// A reload keeps each rule on its worker, with its window; a new rule goes
// to the least loaded worker, and the rules' counters still come back in
// the set's order.
func TestWorkersReload(t *testing.T) {
	set := mustRules(t, scanRule+otherRule)
	var got []*alert.Alert
	e, err := New(Config{Workers: 2, Emit: func(a *alert.Alert) { got = append(got, a) }}, set)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		e.Process([]flow.Flow{synFlow("10.0.0.5", "10.0.0.9", uint16(i), t0.Add(time.Duration(i)*time.Second))})
	}
	owner := e.par.owners["scan"]
	bigger := mustRules(t, scanRule+otherRule+`  - id: third
    severity: low
    where: "proto == 6"
    count: flows
    group_by: [dst_addr]
    window: 1m
    threshold: 1000
`)
	if err := e.Reload(bigger); err != nil {
		t.Fatal(err)
	}
	if e.par.owners["scan"] != owner {
		t.Error("scan moved to another worker")
	}
	for i := 8; i < 10; i++ {
		e.Process([]flow.Flow{synFlow("10.0.0.5", "10.0.0.9", uint16(i), t0.Add(time.Duration(i)*time.Second))})
	}
	if len(got) != 1 || got[0].Rule != "scan" {
		t.Fatalf("alerts %v, want scan's once: its window kept 8 ports across the reload", got)
	}
	var ids []string
	for _, r := range e.Stats().Rules {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"scan", "other", "third"}) {
		t.Errorf("rule stats in order %v", ids)
	}
	if len(e.TopGroups("scan")) == 0 {
		t.Error("no top group of scan from its worker")
	}
}

// What the learning rules of the bundled pack learn is the same, saved as
// one state, with 1 and 2 workers; loaded into workers, each takes its
// rules' part.
func TestWorkersLearnedState(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	flows := realisticFlows(20000)
	save := func(n int) ([]byte, *Engine) {
		e, err := New(Config{Workers: n}, set)
		if err != nil {
			t.Fatal(err)
		}
		in := slices.Clone(flows)
		for i := 0; i < len(in); i += PipelineChunk {
			e.Process(in[i:min(i+PipelineChunk, len(in))])
		}
		b, err := json.Marshal(e.SaveLearned())
		if err != nil {
			t.Fatal(err)
		}
		return b, e
	}
	one, single := save(1)
	two, _ := save(2)
	if !bytes.Equal(one, two) {
		t.Fatalf("learned states differ:\n%s\nvs\n%s", two, one)
	}
	st := single.SaveLearned()
	if len(st.Rules) == 0 {
		t.Fatal("the bundled pack has no learning rule: nothing compared")
	}
	e, err := New(Config{Workers: 2}, set)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.LoadLearned(st); n != len(st.Rules) {
		t.Errorf("workers took %d of %d learning rules' state", n, len(st.Rules))
	}
	if _, ok := e.Learned(st.Rules[0].ID, 5); !ok {
		t.Errorf("no summary of %s from its worker", st.Rules[0].ID)
	}
}

// The workers' goroutines live as long as their engine: once it is
// dropped, they end.
func TestWorkersGoroutinesEnd(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	func() {
		e, err := New(Config{Workers: 4}, set)
		if err != nil {
			t.Fatal(err)
		}
		if n := runtime.NumGoroutine() - before; n != 3 {
			t.Errorf("%d goroutines started for 4 workers, want 3", n)
		}
		e.Process(realisticFlows(1000))
	}()
	for range 100 {
		runtime.GC()
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines left after the engine was dropped", runtime.NumGoroutine()-before)
}

// TestWorkersCountsWithoutFlush checks that the rules' counters reach Stats
// after each batch, whatever the workers: they are counted on the workers'
// goroutines without a locked instruction and published per batch.
func TestWorkersCountsWithoutFlush(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	flows := gen.StreamMix(3, 5000, 4096, 1e5, t0)
	for _, workers := range []int{1, 2} {
		e, err := New(Config{Workers: workers}, set)
		if err != nil {
			t.Fatal(err)
		}
		batch := append([]flow.Flow(nil), flows...)
		e.Process(batch)
		st := e.Stats()
		var matched uint64
		for _, r := range st.Rules {
			if r.Evaluated == 0 || r.Evaluated > uint64(len(flows)) {
				t.Errorf("workers %d: rule %s evaluated %d of %d flows", workers, r.ID, r.Evaluated, len(flows))
			}
			matched += r.Matched
		}
		if matched == 0 || st.Flows != uint64(len(flows)) {
			t.Errorf("workers %d: %d flows counted of %d, %d matches", workers, st.Flows, len(flows), matched)
		}
	}
}

// TestWorkersInTurnWhenCaughtUp checks that the workers take a batch side
// by side only when the engine is behind, and give the same alerts either
// way.
func TestWorkersInTurnWhenCaughtUp(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	flows := gen.StreamMix(5, 5000, 2048, 1e5, t0)
	run := func(caughtUp bool) (uint64, []string) {
		var ids []string
		e, err := New(Config{Workers: 2, Emit: func(a *alert.Alert) { ids = append(ids, a.ID) }}, set)
		if err != nil {
			t.Fatal(err)
		}
		e.SetCaughtUp(caughtUp)
		for i := 0; i < len(flows); i += 256 {
			e.Process(append([]flow.Flow(nil), flows[i:i+256]...))
		}
		e.Flush()
		return e.par.sideBySide, ids
	}
	inTurn, a := run(true)
	sideBySide, b := run(false)
	if inTurn != 0 || sideBySide == 0 {
		t.Errorf("side by side: %d batches caught up, %d behind", inTurn, sideBySide)
	}
	if !slices.Equal(a, b) {
		t.Errorf("alerts differ: %d caught up, %d behind", len(a), len(b))
	}
}

// TestSegmentsAnyBatch checks that the alerts do not depend on how flows
// are batched: a batch larger than a segment (maxSegment) is cut into
// several, a small one is one.
func TestSegmentsAnyBatch(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	flows := realisticFlows(8 * maxSegment)
	for i := range flows { // and a vertical scan, a SYN to a port every 8th flow
		if i%8 != 0 {
			continue
		}
		f := &flows[i]
		f.SrcAddr, f.DstAddr = netip.MustParseAddr("198.51.100.77"), netip.MustParseAddr("10.0.0.5")
		f.SetProto(flow.ProtoTCP)
		f.SrcPort, f.DstPort = 40000, uint16(1+i/8)
		f.SetTCPFlags(flow.TCPSyn)
		f.RawPackets, f.RawBytes = 1, 60
	}
	run := func(size int) []string {
		var ids []string
		e, err := New(Config{Emit: func(a *alert.Alert) { ids = append(ids, a.ID+" "+a.Rule) }}, set)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(flows); i += size {
			e.Process(append([]flow.Flow(nil), flows[i:min(i+size, len(flows))]...))
		}
		e.Flush()
		return ids
	}
	whole, small := run(len(flows)), run(7)
	if len(whole) == 0 || !slices.Equal(whole, small) {
		t.Errorf("alerts: %d in one batch, %d in batches of 7", len(whole), len(small))
	}
}
