package engine

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func mustRules(t testing.TB, src string) *rules.Set {
	t.Helper()
	set, err := rules.LoadBytes("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return set
}

// collect gathers the alerts an engine fires (their first emission;
// collectAll gathers escalations and resolutions too).
func collect(t testing.TB, set *rules.Set) (*Engine, *[]*alert.Alert) {
	t.Helper()
	var got []*alert.Alert
	e, err := New(Config{Emit: func(a *alert.Alert) {
		if a.Event == alert.EventFiring {
			got = append(got, a)
		}
	}}, set)
	if err != nil {
		t.Fatal(err)
	}
	return e, &got
}

func synFlow(src, dst string, dport uint16, at time.Time) flow.Flow {
	f := flow.Flow{
		Type:    flow.TypeFile,
		SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: 40000, DstPort: dport,
		RawBytes: 44, RawPackets: 1, SamplingRate: 1,
		TimeFlowStart: at, TimeFlowEnd: at,
	}
	f.SetProto(flow.ProtoTCP)
	f.SetTCPFlags(flow.TCPSyn)
	f.Renormalise()
	return f
}

const scanRule = `
rules:
  - id: scan
    severity: high
    tags: [T1046]
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 1m
    threshold: 10
    suppress: 5m
`

// The alert fires on the flow that crosses the threshold, once; later flows
// of the same group update it while it fires.
func TestDistinctFiresAtThresholdOnce(t *testing.T) {
	e, got := collect(t, mustRules(t, scanRule))
	var batch []flow.Flow
	for i := range 30 {
		batch = append(batch, synFlow("10.0.0.5", "10.0.0.9", uint16(1000+i), t0.Add(time.Duration(i)*time.Second)))
	}
	// Repeated ports do not count twice.
	batch = append(batch, synFlow("10.0.0.6", "10.0.0.9", 80, t0), synFlow("10.0.0.6", "10.0.0.9", 80, t0.Add(time.Second)))
	e.Process(batch)
	if len(*got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(*got))
	}
	a := (*got)[0]
	if a.Value != 10 || a.Threshold != 10 || a.Rule != "scan" {
		t.Errorf("value/threshold/rule = %v/%v/%v", a.Value, a.Threshold, a.Rule)
	}
	if want := t0.Add(9 * time.Second); !a.FiredAt.Equal(want) {
		t.Errorf("fired_at %v, want %v (the 10th flow)", a.FiredAt, want)
	}
	if !a.FirstSeen.Equal(t0) {
		t.Errorf("first_seen %v, want %v", a.FirstSeen, t0)
	}
	if a.Group["src_addr"] != "10.0.0.5" || a.Group["dst_addr"] != "10.0.0.9" {
		t.Errorf("group %v", a.Group)
	}
	if len(a.Samples) != alert.MaxSamples || a.Samples[len(a.Samples)-1].DstPort != 1009 {
		t.Errorf("samples: %d, last port %d", len(a.Samples), a.Samples[len(a.Samples)-1].DstPort)
	}
	st := e.Stats()
	// The later crossings are of a firing group: not suppressed, and one
	// escalation (at 2× the value first sent).
	if st.Rules[0].Suppressed != 0 || st.Rules[0].Alerts != 1 || st.Rules[0].Escalated != 1 || st.Rules[0].Firing != 1 {
		t.Errorf("stats %+v", st.Rules[0])
	}
}

// A group that resolved fires again once the cooldown is over, not before.
func TestSuppressExpiresOnEventTime(t *testing.T) {
	e, got := collect(t, mustRules(t, scanRule))
	at := 0
	scan := func(seconds int) {
		for range seconds {
			f := synFlow("10.0.0.5", "10.0.0.9", uint16(at), t0.Add(time.Duration(at)*time.Second))
			e.Process([]flow.Flow{f})
			at++
		}
	}
	quiet := func(seconds int) { // other traffic moves the clock
		for range seconds {
			e.Process([]flow.Flow{synFlow("10.1.0.1", "10.1.0.2", 80, t0.Add(time.Duration(at)*time.Second))})
			at++
		}
	}
	// Fires at 9 s, resolves a minute after the scan stops (at 100 s),
	// and the scan resumed at 170 s is inside the 5 minute cooldown.
	scan(30)
	quiet(70)
	scan(30)
	if len(*got) != 1 {
		t.Fatalf("got %d alerts inside the cooldown, want 1", len(*got))
	}
	quiet(200)
	scan(30) // 330 s: the cooldown from 9 s is over
	if len(*got) != 2 {
		t.Fatalf("got %d alerts, want 2", len(*got))
	}
	if d := (*got)[1].FiredAt.Sub((*got)[0].FiredAt); d < 5*time.Minute {
		t.Errorf("second alert %v after the first, inside the cooldown", d)
	}
}

func TestSumRateAndBits(t *testing.T) {
	set := mustRules(t, `
rules:
  - id: bw
    severity: critical
    sum: bytes
    threshold: 8Mbps
    group_by: [dst_addr]
    window: 10s
`)
	e, got := collect(t, set)
	// 10 s window, 8 Mbit/s = 10 MB in the window: 1 MB a second crosses at the 10th second.
	for i := range 12 {
		f := synFlow("192.0.2.1", "10.1.1.1", 443, t0.Add(time.Duration(i)*time.Second))
		f.RawBytes, f.Bytes = 1_000_000, 1_000_000
		e.Process([]flow.Flow{f})
	}
	if len(*got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(*got))
	}
	if a := (*got)[0]; a.Value != 8e6 || !a.FiredAt.Equal(t0.Add(9*time.Second)) {
		t.Errorf("value %v at %v", a.Value, a.FiredAt)
	}
}

func TestPerFlowMatch(t *testing.T) {
	set := mustRules(t, `
rules:
  - id: telnet
    severity: medium
    where: "dst_port == 23"
    group_by: [src_addr]
    suppress: 1m
`)
	e, got := collect(t, set)
	e.Process([]flow.Flow{
		synFlow("10.0.0.1", "192.0.2.1", 23, t0),
		synFlow("10.0.0.1", "192.0.2.2", 23, t0.Add(time.Second)), // same group, suppressed
		synFlow("10.0.0.2", "192.0.2.1", 22, t0),
		synFlow("10.0.0.3", "192.0.2.1", 23, t0),
	})
	if len(*got) != 2 {
		t.Fatalf("got %d alerts, want 2", len(*got))
	}
	if len((*got)[0].Samples) != 1 || (*got)[0].Samples[0].DstAddr.String() != "192.0.2.1" {
		t.Errorf("per-flow alert samples %+v", (*got)[0].Samples)
	}
}

// realisticFlows is a mix like a border router's: many clients, web and DNS
// to many servers, a few busy hosts, and a scanner.
func realisticFlows(n int) []flow.Flow {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]flow.Flow, n)
	for i := range out {
		f := &out[i]
		at := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		f.Type = flow.TypeNetFlowV9
		f.TimeFlowStart, f.TimeFlowEnd, f.TimeReceived = at.Add(-time.Second), at, at
		f.SamplingRate = 1
		src := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
		dst := netip.AddrFrom4([4]byte{byte(1 + r.IntN(200)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		switch k := r.IntN(100); {
		case k < 60: // web
			f.SetProto(flow.ProtoTCP)
			f.SrcPort, f.DstPort = uint16(32768+r.IntN(28000)), 443
			f.SetTCPFlags(flow.TCPSyn | flow.TCPAck | flow.TCPFin | flow.TCPPsh)
			f.RawPackets = uint64(5 + r.IntN(200))
			f.RawBytes = f.RawPackets * uint64(60+r.IntN(1400))
		case k < 85: // DNS
			f.SetProto(flow.ProtoUDP)
			f.SrcPort, f.DstPort = uint16(32768+r.IntN(28000)), 53
			f.RawPackets, f.RawBytes = 1, uint64(60+r.IntN(100))
		case k < 95: // inbound to our servers
			src, dst = dst, src
			f.SetProto(flow.ProtoTCP)
			f.SrcPort, f.DstPort = uint16(32768+r.IntN(28000)), uint16([]int{22, 80, 443, 25}[r.IntN(4)])
			f.SetTCPFlags(flow.TCPSyn | flow.TCPAck)
			f.RawPackets = uint64(3 + r.IntN(20))
			f.RawBytes = f.RawPackets * 400
		default: // a scanner
			src = netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(4))})
			dst = netip.AddrFrom4([4]byte{10, 20, 30, byte(r.IntN(8))})
			f.SetProto(flow.ProtoTCP)
			f.SrcPort, f.DstPort = 40000, uint16(1+r.IntN(10000))
			f.SetTCPFlags(flow.TCPSyn)
			f.RawPackets, f.RawBytes = 1, 44
		}
		f.SrcAddr, f.DstAddr = src, dst
		f.Renormalise()
	}
	return out
}

// Replaying the same flows through a new engine gives the same alerts, byte
// for byte.
func TestReplayIsDeterministic(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	flows := realisticFlows(50000)
	render := func() []byte {
		var buf bytes.Buffer
		e, err := New(Config{Emit: func(a *alert.Alert) {
			b, _ := json.Marshal(a)
			buf.Write(append(b, '\n'))
		}}, set)
		if err != nil {
			t.Fatal(err)
		}
		in := append([]flow.Flow(nil), flows...)
		for i := 0; i < len(in); i += 256 {
			e.Process(in[i:min(i+256, len(in))])
		}
		return buf.Bytes()
	}
	a, b := render(), render()
	if len(a) == 0 {
		t.Fatal("the scanner in the mix raised no alert")
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two replays of the same flows gave different alerts")
	}
}

// BenchmarkEngineExamplePack evaluates the bundled rule pack over a
// realistic flow mix with the memory store, as one core would.
func BenchmarkEngineExamplePack(b *testing.B) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkPack(b, set)
}

// benchmarkPack runs a rule set over a realistic flow mix, in steady state.
func benchmarkPack(b *testing.B, set *rules.Set) {
	flows := realisticFlows(1 << 16)
	e, err := New(Config{}, set)
	if err != nil {
		b.Fatal(err)
	}
	// Warm the windows so the benchmark measures steady state, then
	// shift time forward each round so windows keep sliding.
	r := newRounds(flows, 256, time.Second)
	r.pass(e, len(flows))
	b.ReportAllocs()
	b.ResetTimer()
	r.run(e, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
}

// A reload keeps the window of a rule whose definition did not change
// (a new threshold applies to the counts so far), starts a changed rule
// afresh, and runs a new rule on the next flows.
func TestReloadCarriesUnchangedWindows(t *testing.T) {
	e, got := collect(t, mustRules(t, scanRule))
	for i := range 8 {
		e.Process([]flow.Flow{synFlow("10.0.0.5", "10.0.0.9", uint16(i), t0.Add(time.Duration(i)*time.Second))})
	}
	if len(*got) != 0 {
		t.Fatalf("%d alerts before the reload", len(*got))
	}
	lowered := strings.Replace(scanRule, "threshold: 10", "threshold: 9", 1) + `
  - id: telnet
    severity: low
    where: "dst_port == 23"
    group_by: [src_addr]
`
	if err := e.Reload(mustRules(t, lowered)); err != nil {
		t.Fatal(err)
	}
	// The 9th distinct port crosses the new threshold: the first 8 were kept.
	e.Process([]flow.Flow{synFlow("10.0.0.5", "10.0.0.9", 100, t0.Add(9*time.Second))})
	if len(*got) != 1 || (*got)[0].Value != 9 {
		t.Fatalf("after reload: %d alerts, want 1 with value 9", len(*got))
	}
	e.Process([]flow.Flow{synFlow("10.0.0.7", "10.0.0.9", 23, t0.Add(10*time.Second))})
	if len(*got) != 2 || (*got)[1].Rule != "telnet" {
		t.Fatalf("the new rule did not fire: %d alerts", len(*got))
	}
	// Changing group_by is another window: counting starts again.
	regrouped := strings.Replace(lowered, "group_by: [src_addr, dst_addr]", "group_by: [src_addr]", 1)
	if err := e.Reload(mustRules(t, regrouped)); err != nil {
		t.Fatal(err)
	}
	e.Process([]flow.Flow{synFlow("10.0.0.6", "10.0.0.9", 1, t0.Add(11*time.Second))})
	e.Flush()
	if st := e.Stats(); st.Rules[0].Window.Keys != 1 {
		t.Errorf("regrouped rule kept %d keys, want a fresh window with 1", st.Rules[0].Window.Keys)
	}
}

// TopGroups names a rule's highest groups with their current values.
func TestTopGroups(t *testing.T) {
	e, _ := collect(t, mustRules(t, scanRule))
	for i := range 8 {
		e.Process([]flow.Flow{synFlow("10.0.0.5", "10.0.0.9", uint16(i), t0.Add(time.Duration(i)*time.Second))})
	}
	for i := range 3 {
		e.Process([]flow.Flow{synFlow("10.0.0.6", "10.0.0.9", uint16(i), t0.Add(time.Duration(i)*time.Second))})
	}
	top := e.TopGroups("scan")
	if len(top) != 2 || top[0].Value != 8 || top[0].Group["src_addr"] != "10.0.0.5" || top[1].Value != 3 {
		t.Fatalf("top groups %+v", top)
	}
	// Two minutes later both have left the one-minute window. (A jump of
	// the source's clock takes three flows that agree.)
	for i := range 3 {
		e.Process([]flow.Flow{synFlow("10.0.0.7", "10.0.0.8", uint16(i), t0.Add(2*time.Minute+time.Duration(i)*time.Second))})
	}
	if top := e.TopGroups("scan"); len(top) != 1 || top[0].Group["src_addr"] != "10.0.0.7" {
		t.Fatalf("after the window: %+v", top)
	}
}
