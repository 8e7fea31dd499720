package tuning_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/tuning"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

const testRules = `
rules:
  - id: scan
    severity: high
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 1m
    threshold: 100
  - id: upload
    severity: high
    sum: bytes
    group_by: [src_addr, dst_addr]
    window: 10m
    threshold: 20MB
  - id: telnet
    severity: low
    where: "dst_port == 23"
    group_by: [src_addr]
`

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func tcp(src, dst string, dport uint16, flags uint8, bytes uint64, at time.Time) flow.Flow {
	f := flow.Flow{
		Type:    flow.TypeFile,
		SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: 40000, DstPort: dport, RawBytes: bytes, RawPackets: 1, SamplingRate: 1,
		TimeFlowStart: at, TimeFlowEnd: at,
	}
	f.SetProto(flow.ProtoTCP)
	f.SetTCPFlags(flags)
	f.Renormalise()
	return f
}

func run(t testing.TB, cfg tuning.Config, flows []flow.Flow) (*tuning.Report, []*alert.Alert) {
	t.Helper()
	set, err := rules.LoadBytes("test.yaml", []byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	c := tuning.New(set, cfg)
	var alerts []*alert.Alert
	var totals tuning.Totals
	eng, err := engine.New(engine.Config{
		Observe: c.Observe,
		Emit:    func(a *alert.Alert) { alerts = append(alerts, a); c.OnAlert(a) },
	}, set)
	if err != nil {
		t.Fatal(err)
	}
	totals.Add(flows)
	eng.Process(flows)
	return c.Report(totals), alerts
}

func ruleReport(t *testing.T, rep *tuning.Report, id string) tuning.RuleReport {
	t.Helper()
	for _, r := range rep.Rules {
		if r.Rule == id {
			return r
		}
	}
	t.Fatalf("no report for rule %s", id)
	return tuning.RuleReport{}
}

func TestReport(t *testing.T) {
	var flows []flow.Flow
	at := t0
	// A scan of 150 ports: fires.
	for p := range 150 {
		flows = append(flows, tcp("203.0.113.5", "10.0.0.9", uint16(1000+p), flow.TCPSyn, 44, at))
		at = at.Add(10 * time.Millisecond)
	}
	// Background: clients touching a few ports each; one touches 30.
	for c := range 40 {
		n := 1 + c%4
		if c == 7 {
			n = 30
		}
		src := netip.AddrFrom4([4]byte{10, 1, 0, byte(c + 1)}).String()
		for p := range n {
			flows = append(flows, tcp(src, "198.51.100.1", uint16(443+p), flow.TCPSyn, 60, at))
			at = at.Add(time.Millisecond)
		}
	}
	// Uploads: 25 MB fires, 12 MB is the near miss.
	flows = append(flows, tcp("10.2.0.1", "198.51.100.7", 443, flow.TCPAck, 25e6, at))
	flows = append(flows, tcp("10.2.0.2", "198.51.100.8", 443, flow.TCPAck, 12e6, at))
	flows = append(flows, tcp("10.2.0.3", "198.51.100.8", 23, flow.TCPAck, 100, at))

	rep, alerts := run(t, tuning.Config{MinLowerSpan: -1}, flows)
	if len(alerts) != 3 {
		t.Fatalf("got %d alerts, want 3", len(alerts))
	}
	scan := ruleReport(t, rep, "scan")
	if scan.Alerts != 1 || scan.FiredGroups != 1 || len(scan.Fired) != 1 {
		t.Fatalf("scan fired: %+v", scan)
	}
	if g := scan.Fired[0]; g.Group["src_addr"] != "203.0.113.5" || g.Peak != 150 {
		t.Errorf("scan fired group %+v", g)
	}
	if len(scan.NearMisses) != 5 {
		t.Fatalf("scan near misses %+v", scan.NearMisses)
	}
	if g := scan.NearMisses[0]; g.Group["src_addr"] != "10.1.0.8" || g.Group["dst_addr"] != "198.51.100.1" || g.Peak != 30 || g.Ratio != 0.3 {
		t.Errorf("first near miss %+v", g)
	}
	if g := scan.NearMisses[1]; g.Peak != 4 {
		t.Errorf("second near miss %+v", g)
	}
	if scan.Groups != 41 || scan.Percentiles == nil || scan.Percentiles.Max != 150 || scan.Percentiles.P50 != 3 {
		t.Errorf("scan groups %d percentiles %+v", scan.Groups, scan.Percentiles)
	}
	// Background peak 30 × 1.2 = 36 → 40, and the scan (150) still fires;
	// 150 × 1.2 = 180 → 200 is quiet.
	if s := scan.Suggestion; s == nil || s.Threshold != 40 || s.Text != "40" || s.Change != "lower" || s.Quiet != 200 {
		t.Errorf("scan suggestion %+v", scan.Suggestion)
	}

	up := ruleReport(t, rep, "upload")
	if up.Alerts != 1 || up.Fired[0].Group["src_addr"] != "10.2.0.1" {
		t.Errorf("upload fired %+v", up.Fired)
	}
	if up.NearMisses[0].Group["src_addr"] != "10.2.0.2" || up.NearMisses[0].Ratio != 0.6 {
		t.Errorf("upload near misses %+v", up.NearMisses)
	}
	// 12 MB × 1.2 = 14.4 MB → 15MB ≤ 25 MB.
	if s := up.Suggestion; s.Text != "15MB" || s.QuietText != "30MB" || s.Quiet != 30e6 {
		t.Errorf("upload suggestion %+v", s)
	}
	tel := ruleReport(t, rep, "telnet")
	if tel.Alerts != 1 || tel.FiredGroups != 1 || tel.Suggestion != nil {
		t.Errorf("telnet %+v", tel)
	}
	if rep.Totals.Flows != uint64(len(flows)) || rep.Totals.Bytes < 37e6 {
		t.Errorf("totals %+v", rep.Totals)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"scan (distinct dst_port over 1m0s, threshold 100): 1 alert from 1 group",
		"near miss   dst_addr=198.51.100.1 src_addr=10.1.0.8",
		"suggestion  threshold: 40 (lower; now 100)",
		"suggestion  threshold: 15MB (lower; now 20MB)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back tuning.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rules) != 3 {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
}

func TestSuggestionOverlap(t *testing.T) {
	var flows []flow.Flow
	// Two equal uploads; one fires first, the other only after the rule's
	// threshold... both fire: every group fired, the threshold is kept.
	flows = append(flows, tcp("10.2.0.1", "198.51.100.7", 443, flow.TCPAck, 25e6, t0))
	flows = append(flows, tcp("10.2.0.2", "198.51.100.8", 443, flow.TCPAck, 30e6, t0))
	rep, _ := run(t, tuning.Config{}, flows)
	up := ruleReport(t, rep, "upload")
	if s := up.Suggestion; s.Change != "keep" || !strings.Contains(s.Basis, "every group fired") || s.QuietText != "40MB" {
		t.Errorf("suggestion %+v", s)
	}
}

func TestEviction(t *testing.T) {
	var flows []flow.Flow
	for i := range 1000 {
		src := netip.AddrFrom4([4]byte{10, 3, byte(i >> 8), byte(i)}).String()
		flows = append(flows, tcp(src, "198.51.100.9", 443, flow.TCPAck, uint64(1000+i), t0))
	}
	rep, _ := run(t, tuning.Config{MaxGroups: 100}, flows)
	up := ruleReport(t, rep, "upload")
	if up.Groups != 100 || up.GroupsEvicted != 0 {
		// Values rise with i, so each new group pushes out the lowest.
		if up.Groups != 100 || up.GroupsEvicted != 900 {
			t.Errorf("groups %d evicted %d", up.Groups, up.GroupsEvicted)
		}
	}
	if up.Percentiles.Max != 1999 || up.Percentiles.P50 != 1949 {
		t.Errorf("percentiles %+v", up.Percentiles)
	}
	if up.NearMisses[0].Peak != 1999 || up.NearMisses[4].Peak != 1995 {
		t.Errorf("near misses %+v", up.NearMisses)
	}
}

// BenchmarkObserve feeds the collector the values of a rule over 5,000
// groups that keep rising, as a sum window's values do.
func BenchmarkObserve(b *testing.B) {
	set, err := rules.LoadBytes("test.yaml", []byte(testRules))
	if err != nil {
		b.Fatal(err)
	}
	r := set.Rules[1]
	c := tuning.New(set, tuning.Config{})
	keys := make([][]byte, 5000)
	fl := make([]flow.Flow, len(keys))
	for i := range keys {
		fl[i] = tcp(netip.AddrFrom4([4]byte{10, 3, byte(i >> 8), byte(i)}).String(), "198.51.100.9", 443, flow.TCPAck, 1000, t0)
		for _, fd := range r.GroupBy {
			keys[i] = fd.AppendKey(keys[i], &fl[i])
		}
	}
	// Warm up: every group tracked.
	for i := range keys {
		c.Observe(r, keys[i], 1, &fl[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % len(keys)
		c.Observe(r, keys[k], float64(i/len(keys)+1)+float64(k), &fl[k])
	}
}

// A suggestion never goes below the rule's floor: a tenth of the current
// threshold or the unit's floor, whichever is higher.
func TestSuggestionFloor(t *testing.T) {
	// A scan of 150 ports fires; the background touches one port each.
	flows := scanWithBackground(1, t0)
	// The 20MB upload rule sees 30 MB fire and 1 KB of background.
	flows = append(flows, tcp("10.2.0.1", "198.51.100.7", 443, flow.TCPAck, 30e6, t0))
	flows = append(flows, tcp("10.2.0.2", "198.51.100.8", 443, flow.TCPAck, 1000, t0))
	rep, _ := run(t, tuning.Config{MinLowerSpan: -1}, flows)
	scan := ruleReport(t, rep, "scan")
	// Background 1 → 2 alone; the floor is max(10, 100/10) = 10.
	if s := scan.Suggestion; s == nil || s.Threshold != 10 || s.Text != "10" || !s.Floored || s.Floor != 10 || s.Change != "lower" ||
		!strings.Contains(s.Basis, "raised to the rule's floor 10") {
		t.Errorf("scan suggestion %+v", scan.Suggestion)
	}
	up := ruleReport(t, rep, "upload")
	// 1 KB × 1.2 → 1.2KB alone; the floor is max(1MB, 20MB/10) = 2MB.
	if s := up.Suggestion; s == nil || s.Threshold != 2e6 || s.Text != "2MB" || !s.Floored || s.FloorText != "2MB" {
		t.Errorf("upload suggestion %+v", up.Suggestion)
	}
}

// On an input shorter than MinLowerSpan (default an hour) the report keeps
// the threshold, says the capture is too short, and names what it alone
// would suggest; raising is still suggested.
func TestSuggestionTooShortToLower(t *testing.T) {
	flows := scanWithBackground(30, t0.Add(time.Minute))
	rep, _ := run(t, tuning.Config{}, flows)
	if span := rep.Totals.SpanSeconds; span != 60 {
		t.Fatalf("span %vs, want 60", span)
	}
	scan := ruleReport(t, rep, "scan")
	if s := scan.Suggestion; s == nil || s.Change != "keep" || s.Threshold != 100 || !s.TooShort ||
		!strings.Contains(s.Basis, "the input spans 1m0s, too short to lower a threshold (at least 1h0m0s); this input alone suggests 40") {
		t.Errorf("scan suggestion %+v", scan.Suggestion)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "threshold: 100 (keep; now 100): the input spans 1m0s, too short") {
		t.Errorf("text report:\n%s", text.String())
	}
	rep, _ = run(t, tuning.Config{MinLowerSpan: time.Minute}, flows)
	if s := ruleReport(t, rep, "scan").Suggestion; s.Change != "lower" || s.TooShort || s.Threshold != 40 {
		t.Errorf("with a minimum of 1m, 1m of input lowers: %+v", s)
	}
}

// scanWithBackground returns a scan of 150 ports at t0 and 20 clients each
// touching that many distinct ports of one server at bgAt.
func scanWithBackground(ports int, bgAt time.Time) []flow.Flow {
	var flows []flow.Flow
	for p := range 150 {
		flows = append(flows, tcp("203.0.113.5", "10.0.0.9", uint16(1000+p), flow.TCPSyn, 44, t0))
	}
	for c := range 20 {
		src := netip.AddrFrom4([4]byte{10, 1, 0, byte(c + 1)}).String()
		for p := range ports {
			flows = append(flows, tcp(src, "198.51.100.1", uint16(443+p), flow.TCPSyn, 60, bgAt))
		}
	}
	return flows
}

// Each unit's floor, a tenth of the threshold when higher, and never above
// the threshold itself.
func TestFloor(t *testing.T) {
	set, err := rules.LoadBytes("floors.yaml", []byte(`
rules:
  - {id: ports, severity: low, distinct: dst_port, group_by: [src_addr], window: 1m, threshold: 50}
  - {id: upload, severity: low, sum: bytes, group_by: [src_addr], window: 1m, threshold: 200MB}
  - {id: flood, severity: low, sum: packets, rate: true, group_by: [dst_addr], window: 10s, threshold: 100pps}
  - {id: small, severity: low, sum: packets, rate: true, group_by: [dst_addr], window: 10s, threshold: 20pps}
  - {id: bits, severity: low, group_by: [dst_addr], window: 10s, threshold: 5Mbps}
  - {id: flows, severity: low, count: flows, rate: true, group_by: [dst_addr], window: 10s, threshold: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"ports": 10, "upload": 20e6, "flood": 100, "small": 20, "bits": 1e6, "flows": 1}
	for _, r := range set.Rules {
		if got := tuning.Floor(r); got != want[r.ID] {
			t.Errorf("Floor(%s) = %v, want %v", r.ID, got, want[r.ID])
		}
	}
}
