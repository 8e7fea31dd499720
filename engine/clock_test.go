package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/flowfile"
	"github.com/flowguard/flowguard/rules"
)

// A flow stamped an hour ahead of its source moves no clock: it is
// evaluated at the watermark, counted as future, and the flows after it
// are on time.
func TestFutureFlowClamped(t *testing.T) {
	e, got := collect(t, mustRules(t, scanRule))
	ahead := synFlow("10.0.0.7", "10.0.0.8", 80, t0.Add(time.Hour))
	batch := []flow.Flow{ahead} // first: before any clock is known
	for i := range 12 {
		batch = append(batch, synFlow("10.0.0.5", "10.0.0.9", uint16(1000+i), t0.Add(time.Duration(i)*time.Second)))
	}
	e.Process(batch)
	if len(*got) != 1 || (*got)[0].Value != 10 {
		t.Fatalf("got %d alerts, want the scan's at 10 ports", len(*got))
	}
	if a := (*got)[0]; !a.FiredAt.Equal(t0.Add(9 * time.Second)) {
		t.Errorf("fired at %v, want the tenth probe's time", a.FiredAt)
	}
	e.Flush()
	ts := e.Stats().Time
	if ts.Future != 1 || ts.Late != 0 {
		t.Errorf("future %d, late %d; want 1, 0", ts.Future, ts.Late)
	}
	if w := time.Unix(0, ts.Watermark); w.After(t0.Add(12*time.Second)) || w.Before(t0) {
		t.Errorf("watermark %v, want within the probes' times", w.UTC())
	}
	if len(ts.Sources) != 1 || ts.Sources[0].Type != flow.TypeFile || ts.Sources[0].Future != 1 || ts.Sources[0].Flows != 13 {
		t.Errorf("sources %+v, want one file source with 13 flows, 1 future", ts.Sources)
	}
	if st := e.Stats().Rules[0].Window; st.Late != 0 {
		t.Errorf("window late %d, want 0", st.Late)
	}
}

// A flow behind the watermark by more than its window and the allowed
// lateness is late, per rule and per source; one inside the lateness
// counts.
func TestLatenessCounted(t *testing.T) {
	set := mustRules(t, scanRule)
	var got []*alert.Alert
	e, err := New(Config{AllowedLateness: 20 * time.Second, Emit: firingOnly(&got)}, set)
	if err != nil {
		t.Fatal(err)
	}
	var batch []flow.Flow
	for i := range 5 {
		batch = append(batch, synFlow("10.0.0.1", "10.0.0.2", uint16(i), t0.Add(200*time.Second+time.Duration(i)*time.Second)))
	}
	// 1m window + 20s lateness behind the watermark (202s at the end).
	batch = append(batch,
		synFlow("10.0.0.5", "10.0.0.9", 1, t0.Add(130*time.Second)), // on time: 72s behind
		synFlow("10.0.0.5", "10.0.0.9", 2, t0.Add(100*time.Second)), // late: 102s behind
	)
	e.Process(batch)
	e.Flush()
	st := e.Stats()
	if st.Time.Late != 1 || st.Rules[0].Window.Late != 1 {
		t.Errorf("late: engine %d, window %d; want 1, 1", st.Time.Late, st.Rules[0].Window.Late)
	}
	if st.Time.Sources[0].Late != 1 {
		t.Errorf("source late %d, want 1", st.Time.Sources[0].Late)
	}
}

// Spoofed exporter addresses do not grow the source table past its bound,
// and their flows' stamps (a forged datagram's) move no clock when the
// flows carry the collector's receive time.
func TestSourcesBounded(t *testing.T) {
	set := mustRules(t, scanRule)
	var got []*alert.Alert
	e, err := New(Config{MaxSources: 16, Emit: firingOnly(&got)}, set)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 30 {
		var batch []flow.Flow
		now := t0.Add(time.Duration(i) * time.Second)
		f := synFlow("10.0.0.5", "10.0.0.9", uint16(1000+i), now)
		f.Type, f.SamplerAddress, f.TimeReceived = flow.TypeNetFlowV9, netip.MustParseAddr("192.0.2.1"), now
		batch = append(batch, f)
		for range 200 { // forged: any address, any stamp
			g := synFlow("10.0.0.66", "10.0.0.9", uint16(rng.IntN(65536)), t0.Add(time.Duration(rng.Int64N(int64(48*time.Hour)))))
			g.Type, g.TimeReceived = flow.TypeNetFlowV9, now
			g.SamplerAddress = netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(256)), byte(rng.IntN(256))})
			batch = append(batch, g)
		}
		e.Process(batch)
	}
	e.Flush()
	ts := e.Stats().Time
	if len(ts.Sources) != 17 || ts.Sources[16].Type != otherSources {
		t.Fatalf("%d sources, want 16 and the shared %q", len(ts.Sources), otherSources)
	}
	if w := time.Unix(0, ts.Watermark); w.After(t0.Add(30 * time.Second)) {
		t.Errorf("watermark %v moved past the receive clock", w.UTC())
	}
	scans := 0
	for _, a := range got {
		if a.Group["src_addr"] == "10.0.0.5" {
			scans++
		}
	}
	if scans != 1 {
		t.Errorf("%d scan alerts from the real exporter, want 1", scans)
	}
}

// portscanFlows reads the committed port scan as nfdump printed it.
func portscanFlows(t *testing.T) []flow.Flow {
	t.Helper()
	r, err := flowfile.Open("testdata/portscan.nfdump.csv", flowfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []flow.Flow
	if err := r.Run(context.Background(), func(b []flow.Flow) { out = append(out, b...) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// conversation names the exporter a flow is given in the property tests:
// one per pair of addresses, so that every group of the bundled rules
// comes from one exporter.
func conversation(f *flow.Flow) netip.Addr {
	a, b := f.SrcAddr.As4(), f.DstAddr.As4()
	return netip.AddrFrom4([4]byte{192, 0, 2, min(a[3], b[3])})
}

// bundled returns the bundled rule pack.
func bundled(t *testing.T) *rules.Set {
	t.Helper()
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// alertsOf replays flows through a rule set in batches as a reader hands
// them over.
func alertsOf(t *testing.T, set *rules.Set, flows []flow.Flow) []*alert.Alert {
	t.Helper()
	var got []*alert.Alert
	e, err := New(Config{Emit: firingOnly(&got)}, set)
	if err != nil {
		t.Fatal(err)
	}
	for b := range slices.Chunk(slices.Clone(flows), 256) {
		e.Process(b)
	}
	return got
}

// unstamped is an alert's JSON without its samples' flow start and end
// (the exporter's stamps, which a skewed clock changes).
func unstamped(t *testing.T, a *alert.Alert) string {
	t.Helper()
	c := *a
	c.Samples = slices.Clone(a.Samples)
	for i := range c.Samples {
		c.Samples[i].TimeFlowStart, c.Samples[i].TimeFlowEnd = time.Time{}, time.Time{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Property: exporters whose clocks are off by constant offsets of their
// own change no alert when the flows carry receive times. Each
// conversation of the port-scan capture is given its own exporter and its
// own offset, from a minute to days either way; the flows' event times
// move, their receive times (the collector's clock) do not. The engine
// places each exporter on the receive clock by the median of its offsets,
// which moves by exactly the exporter's offset, so every alert is the one
// of the unshifted file, byte for byte but for the samples' own stamps.
//
// (It holds for offsets that put an exporter out of the normal band
// (-future_tolerance, allowed_lateness] of receive minus event time, as
// this capture, exported two days after it was made, already is: inside
// the band event times are used as they are, see the next property.)
func TestPropertyExporterOffsets(t *testing.T) {
	base := portscanFlows(t)
	for i := range base {
		base[i].SamplerAddress = conversation(&base[i])
	}
	set := bundled(t)
	want := alertsOf(t, set, base)
	if len(want) == 0 {
		t.Fatal("the capture raises no alert")
	}
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 11))
		offsets := map[netip.Addr]time.Duration{}
		flows := slices.Clone(base)
		for i := range flows {
			f := &flows[i]
			d, ok := offsets[f.SamplerAddress]
			if !ok {
				d = time.Duration(1+rng.Int64N(int64(72*time.Hour/time.Second))) * time.Second
				if rng.IntN(2) == 0 {
					d = -d
				}
				offsets[f.SamplerAddress] = d
			}
			f.TimeFlowStart, f.TimeFlowEnd = f.TimeFlowStart.Add(d), f.TimeFlowEnd.Add(d)
		}
		got := alertsOf(t, set, flows)
		if len(got) != len(want) {
			t.Fatalf("seed %d, offsets %v: %d alerts, want %d", seed, offsets, len(got), len(want))
		}
		for i := range got {
			if g, w := unstamped(t, got[i]), unstamped(t, want[i]); g != w {
				t.Errorf("seed %d, offsets %v: alert %d\n got %s\nwant %s", seed, offsets, i, g, w)
			}
		}
	}
}

// fastScan is a port-scan rule with a window (10s) shorter than the lags
// the property below gives exporters.
const fastScan = `
rules:
  - id: fast-scan
    severity: high
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 10s
    threshold: 500
`

// Property: without receive times, exporters whose clocks lag the latest
// one by up to the allowed lateness lose no alert, even of rules whose
// window is shorter than the lag: each alert keeps its rule, group and
// value, and its times move by its exporter's lag.
func TestPropertyLagWithinLateness(t *testing.T) {
	base := portscanFlows(t)
	for i := range base {
		base[i].SamplerAddress = conversation(&base[i])
		base[i].TimeReceived = time.Time{}
	}
	// The flows arrive as they happened, every exporter's interleaved:
	// the lagging ones' stamps fall behind the others'.
	slices.SortStableFunc(base, func(a, b flow.Flow) int { return a.TimeFlowEnd.Compare(b.TimeFlowEnd) })
	set := bundled(t)
	set.Rules = append(set.Rules, mustRules(t, fastScan).Rules...)
	want := alertsOf(t, set, base)
	fast := false
	for _, a := range want {
		fast = fast || a.Rule == "fast-scan"
	}
	if !fast {
		t.Fatal("the capture raises no fast-scan alert")
	}
	if len(want) == 0 {
		t.Fatal("the capture raises no alert")
	}
	for seed := range uint64(16) {
		rng := rand.New(rand.NewPCG(seed, 12))
		lags := map[netip.Addr]time.Duration{}
		flows := slices.Clone(base)
		for i := range flows {
			f := &flows[i]
			d, ok := lags[f.SamplerAddress]
			if !ok {
				d = -time.Duration(rng.Int64N(int64(DefaultAllowedLateness)))
				lags[f.SamplerAddress] = d
			}
			f.TimeFlowStart, f.TimeFlowEnd = f.TimeFlowStart.Add(d), f.TimeFlowEnd.Add(d)
		}
		got := alertsOf(t, set, flows)
		if len(got) != len(want) {
			t.Fatalf("seed %d, lags %v: %d alerts, want %d", seed, lags, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			d := lags[g.Samples[len(g.Samples)-1].SamplerAddress]
			if g.Rule != w.Rule || fmt.Sprint(g.Group) != fmt.Sprint(w.Group) || g.Value != w.Value ||
				!g.FiredAt.Equal(w.FiredAt.Add(d)) || !g.FirstSeen.Equal(w.FirstSeen.Add(d)) || !g.LastSeen.Equal(w.LastSeen.Add(d)) {
				t.Errorf("seed %d, lag %v: alert %d\n got %s %v %v fired %v first %v last %v\nwant %s %v %v fired %v first %v last %v (+lag)",
					seed, d, i, g.Rule, g.Group, g.Value, g.FiredAt, g.FirstSeen, g.LastSeen,
					w.Rule, w.Group, w.Value, w.FiredAt, w.FirstSeen, w.LastSeen)
			}
		}
	}
}
