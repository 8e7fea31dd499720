package rediswindow_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/enrich/networks"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

const burstScanRule = `
rules:
  - id: scan
    severity: high
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 1m
    threshold: 2000
    suppress: 5m
`

// Two engines on one Redis, each running its pipeline as the daemon does,
// each given half of a 3000-port scan in a burst of 30 ms, then nothing:
// each half (1500 ports) is under the threshold of 2000. Exactly one alert
// comes out, within about two flush intervals, with the combined value,
// the group and a sample of its flows.
func TestEnginesFireSplitBurstOnExchange(t *testing.T) {
	const (
		ports    = 3000
		interval = 200 * time.Millisecond
	)
	set, err := rules.LoadBytes("burst.yaml", []byte(burstScanRule))
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.StartServer(t)
	cfg := rediswindow.Config{URL: "redis://" + srv.Addr + "/0", FlushInterval: interval,
		KeyPrefix: fmt.Sprintf("engines%d:", prefixes.Add(1))}
	var (
		mu     sync.Mutex
		alerts []*alert.Alert
		at     []time.Time
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var pipes [2]*engine.Pipeline
	for i := range pipes {
		e, err := engine.New(engine.Config{Store: open(t, cfg), Emit: func(a *alert.Alert) {
			mu.Lock()
			alerts, at = append(alerts, a), append(at, time.Now())
			mu.Unlock()
		}}, set)
		if err != nil {
			t.Fatal(err)
		}
		pipes[i] = engine.NewPipeline(e, 16)
		pipes[i].ExchangeEvery(interval)
		wg.Add(1)
		go func() { defer wg.Done(); pipes[i].Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	src, dst := netip.MustParseAddr("198.51.100.23"), netip.MustParseAddr("10.20.30.40")
	t0 := time.Now().UTC()
	var halves [2][]flow.Flow
	for p := range ports {
		at := t0.Add(time.Duration(p) * 30 * time.Millisecond / ports)
		f := flow.Flow{Type: flow.TypeFile, SrcAddr: src, DstAddr: dst, SrcPort: 40000, DstPort: uint16(p + 1),
			RawBytes: 44, RawPackets: 1, SamplingRate: 1, TimeFlowStart: at, TimeFlowEnd: at}
		f.SetProto(flow.ProtoTCP)
		f.SetTCPFlags(flow.TCPSyn)
		f.Renormalise()
		halves[p%2] = append(halves[p%2], f)
	}
	start := time.Now()
	for i, h := range halves {
		for j := 0; j < len(h); j += 100 {
			pipes[i].Handle(h[j:min(j+100, len(h))])
		}
	}
	// Wait for the first alert, then as long again as the bound, for a
	// second one that must not come.
	deadline := start.Add(3 * interval)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(alerts)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(3 * interval)
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want exactly 1 (each half is under the threshold; suppression is shared)", len(alerts))
	}
	a, took := alerts[0], at[0].Sub(start)
	t.Logf("alert %v after the burst began (flush interval %v): value %v", took, interval, a.Value)
	if took > 3*interval {
		t.Errorf("alert after %v, want within about two flush intervals of %v", took, interval)
	}
	if a.Rule != "scan" || math.Abs(a.Value-ports) > 0.03*ports {
		t.Errorf("alert %s value %v, want scan with about %d", a.Rule, a.Value, ports)
	}
	if a.Group["src_addr"] != src.String() || a.Group["dst_addr"] != dst.String() {
		t.Errorf("group %v, want %v → %v", a.Group, src, dst)
	}
	if a.FirstSeen.Before(t0) || a.FirstSeen.After(t0.Add(30*time.Millisecond)) {
		t.Errorf("first_seen %v, want within the burst from %v", a.FirstSeen, t0)
	}
	if len(a.Samples) == 0 || a.Samples[0].SrcAddr != src {
		t.Errorf("samples %v, want flows of the group", a.Samples)
	}
}

// A group this instance saw only far from the threshold keeps no flow of
// it (1 port of 200: not in the samples, not in the exchange table). When
// another instance's 199 ports make it cross, the alert is built from the
// group key: its values decoded, its addresses enriched again.
func TestExchangeFiresFromGroupKey(t *testing.T) {
	set, err := rules.LoadBytes("key.yaml", []byte(strings.Replace(burstScanRule, "threshold: 2000", "threshold: 200", 1)))
	if err != nil {
		t.Fatal(err)
	}
	enr, err := enrich.Build(enrich.Config{Networks: networks.Config{Internal: []string{"10.0.0.0/8"},
		Named: []networks.NamedConfig{{Name: "dc", Prefix: "10.20.0.0/16"}}}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.StartServer(t)
	cfg := rediswindow.Config{URL: "redis://" + srv.Addr + "/0", FlushInterval: time.Hour,
		KeyPrefix: fmt.Sprintf("fromkey%d:", prefixes.Add(1))}
	var alerts []*alert.Alert
	var stores [2]*rediswindow.Store
	var engines [2]*engine.Engine
	for i := range engines {
		stores[i] = open(t, cfg)
		engines[i], err = engine.New(engine.Config{Store: stores[i], Enricher: enr,
			Emit: func(a *alert.Alert) { alerts = append(alerts, a) }}, set)
		if err != nil {
			t.Fatal(err)
		}
	}
	src, dst := netip.MustParseAddr("198.51.100.23"), netip.MustParseAddr("10.20.30.40")
	t0 := time.Now().UTC()
	scan := func(from, to int) []flow.Flow {
		var out []flow.Flow
		for p := from; p <= to; p++ {
			at := t0.Add(time.Duration(p) * time.Millisecond)
			f := flow.Flow{Type: flow.TypeFile, SrcAddr: src, DstAddr: dst, SrcPort: 40000, DstPort: uint16(p),
				RawBytes: 44, RawPackets: 1, SamplingRate: 1, TimeFlowStart: at, TimeFlowEnd: at}
			f.SetProto(flow.ProtoTCP)
			f.SetTCPFlags(flow.TCPSyn)
			f.Renormalise()
			out = append(out, f)
		}
		return out
	}
	ctx := context.Background()
	engines[1].Process(scan(1, 199))
	if err := stores[1].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	engines[0].Process(scan(200, 200))
	if err := stores[0].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := engines[1].Exchange(); n != 0 {
		t.Errorf("the instance that flushed first fired %d alerts: it never learnt the other's port", n)
	}
	if n := engines[0].Exchange(); n != 1 || len(alerts) != 1 {
		t.Fatalf("Exchange fired %d alerts (%d emitted), want 1", n, len(alerts))
	}
	a := alerts[0]
	want := map[string]any{"src_addr": src.String(), "dst_addr": dst.String()}
	if fmt.Sprint(a.Group) != fmt.Sprint(want) || a.Value != 200 {
		t.Errorf("alert group %v value %v, want %v and 200", a.Group, a.Value, want)
	}
	if len(a.Samples) != 0 {
		t.Errorf("%d samples, want none: no flow of the group was kept here", len(a.Samples))
	}
	if e := a.Enrichment["dst_addr"]; e["internal"] != true || e["network"] != "dc" {
		t.Errorf("dst_addr enrichment %v, want internal in network dc", e)
	}
	if !strings.Contains(a.Message, src.String()) || !strings.Contains(a.Message, dst.String()) {
		t.Errorf("message %q does not name the group", a.Message)
	}
	if n := engines[0].Exchange(); n != 0 {
		t.Errorf("a second Exchange with nothing new fired %d alerts", n)
	}
}
