package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
)

// firingOnly is an Emit that keeps the first emission of each alert.
func firingOnly(got *[]*alert.Alert) func(*alert.Alert) {
	return func(a *alert.Alert) {
		if a.Event == alert.EventFiring {
			*got = append(*got, a)
		}
	}
}

func collectAll(t testing.TB, src string, cfg Config) (*Engine, *[]*alert.Alert, *[]Progress) {
	t.Helper()
	var got []*alert.Alert
	var prog []Progress
	cfg.Emit = func(a *alert.Alert) { got = append(got, a) }
	cfg.Progress = func(p Progress) { prog = append(prog, p) }
	e, err := New(cfg, mustRules(t, src))
	if err != nil {
		t.Fatal(err)
	}
	return e, &got, &prog
}

// scanner sends one SYN a second to a new port of 10.0.0.9 from src, and
// other traffic moves the clock while it pauses.
type scanner struct {
	e    *Engine
	at   int
	port int
}

func (s *scanner) scan(src string, seconds, perSecond int) {
	for range seconds {
		var b []flow.Flow
		for range perSecond {
			b = append(b, synFlow(src, "10.0.0.9", uint16(s.port), t0.Add(time.Duration(s.at)*time.Second)))
			s.port++
		}
		s.e.Process(b)
		s.at++
	}
}

func (s *scanner) quiet(seconds int) {
	for range seconds {
		s.e.Process([]flow.Flow{synFlow("10.1.0.1", "10.1.0.2", 80, t0.Add(time.Duration(s.at)*time.Second))})
		s.at++
	}
}

const lifecycleRule = `
rules:
  - id: scan
    severity: high
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 1m
    threshold: 100
    message: "{src_addr} probed {value} ports of {dst_addr} within {window}"
`

// One scan is one alert: fired at the crossing, sent again at 2× and 10×
// the value first sent, resolved a window after it stops, with the peak,
// the totals and the duration; the same id throughout.
func TestLifecycleFireEscalateResolve(t *testing.T) {
	e, got, prog := collectAll(t, lifecycleRule, Config{})
	s := &scanner{e: e}
	s.scan("10.0.0.5", 60, 20) // 1200 distinct ports in the window at the end
	s.scan("10.0.0.5", 60, 20)
	if len(*got) != 3 {
		t.Fatalf("%d emissions while scanning, want fire, 2×, 10×: %v", len(*got), events(*got))
	}
	fire, x2, x10 := (*got)[0], (*got)[1], (*got)[2]
	if fire.Event != alert.EventFiring || fire.Status != alert.StatusFiring || fire.Value != 100 || fire.Peak != 100 || fire.Notifications != 1 {
		t.Errorf("fire: %s %s value %v peak %v n %d", fire.Event, fire.Status, fire.Value, fire.Peak, fire.Notifications)
	}
	if x2.Event != alert.EventEscalated || x2.Value < 200 || x2.Value >= 220 || x2.ID != fire.ID || x2.Notifications != 2 {
		t.Errorf("2×: %s value %v id %s n %d", x2.Event, x2.Value, x2.ID, x2.Notifications)
	}
	if x10.Event != alert.EventEscalated || x10.Value < 1000 || x10.ID != fire.ID || x10.Notifications != 3 {
		t.Errorf("10×: %s value %v n %d", x10.Event, x10.Value, x10.Notifications)
	}
	if !strings.Contains(x10.Message, "probed 10") {
		t.Errorf("escalation message not rendered with its value: %s", x10.Message)
	}
	if fire.Value != 100 || fire.Peak != 100 {
		t.Errorf("an emitted alert changed afterwards: %v/%v", fire.Value, fire.Peak)
	}
	if len(*prog) == 0 || (*prog)[len(*prog)-1].ID != fire.ID || (*prog)[len(*prog)-1].Peak < 1200 {
		t.Errorf("progress: %d, last %+v", len(*prog), (*prog)[len(*prog)-1])
	}
	s.quiet(59)
	if len(*got) != 3 {
		t.Fatalf("resolved before the window passed: %v", events(*got))
	}
	s.quiet(3)
	if len(*got) != 4 {
		t.Fatalf("not resolved a window after the scan: %v", events(*got))
	}
	r := (*got)[3]
	if r.Event != alert.EventResolved || r.Status != alert.StatusResolved || r.ID != fire.ID || r.EndedAt == nil {
		t.Fatalf("resolved: %s %s %s %v", r.Event, r.Status, r.ID, r.EndedAt)
	}
	if want := t0.Add(119*time.Second + time.Minute); !r.EndedAt.Equal(want) {
		t.Errorf("ended_at %v, want %v (the last flow at the level plus resolve_after)", r.EndedAt, want)
	}
	// The window holds a bucket more than a minute at most: 65 s of 20
	// new ports a second. Totals count from the crossing (the 100th flow).
	if r.Peak != 1300-1 || r.Notifications != 4 {
		t.Errorf("peak %v notifications %d", r.Peak, r.Notifications)
	}
	for _, want := range []string{"resolved after 1m59s", "probed 1299 ports of 10.0.0.9 within 1m59s",
		"2301 flows, 2301 packets, 101.2KB while firing"} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("resolved message %q lacks %q", r.Message, want)
		}
	}
	st := e.Stats().Rules[0]
	if st.Firing != 0 || st.Escalated != 2 || st.Resolved != 1 || st.Alerts != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A group that dips under the threshold but stays above the hysteresis
// level keeps firing; one under it for resolve_after resolves.
func TestLifecycleHysteresis(t *testing.T) {
	e, got, _ := collectAll(t, strings.Replace(lifecycleRule, "window: 1m", "window: 1m\n    resolve_after: 30s\n    escalate: []", 1), Config{})
	s := &scanner{e: e}
	s.scan("10.0.0.5", 60, 2) // 120 ports: fires at 100
	// 1.6 new ports a second keep ~96 in the window: under the threshold,
	// above 90.
	for range 120 {
		s.scan("10.0.0.5", 1, 1+s.at%5/3*2)
	}
	if len(*got) != 1 {
		t.Fatalf("emissions %v, want the fire only", events(*got))
	}
	s.quiet(95)
	if len(*got) != 2 || (*got)[1].Status != alert.StatusResolved {
		t.Fatalf("emissions %v, want fire, resolved", events(*got))
	}
}

// Each rule tracks at most MaxFiring groups; the rest fire as before and
// are counted.
func TestLifecycleFiringBound(t *testing.T) {
	e, got, _ := collectAll(t, strings.Replace(lifecycleRule, "threshold: 100", "threshold: 2", 1), Config{MaxFiring: 3})
	var b []flow.Flow
	for i := range 10 {
		src := "10.0.0." + string(rune('0'+i))
		b = append(b, synFlow(src, "10.0.0.9", 1, t0), synFlow(src, "10.0.0.9", 2, t0))
	}
	e.Process(b)
	if len(*got) != 10 {
		t.Fatalf("%d alerts, want 10", len(*got))
	}
	st := e.Stats().Rules[0]
	if st.Firing != 3 || st.FiringOverflow != 7 {
		t.Errorf("firing %d overflow %d, want 3 and 7", st.Firing, st.FiringOverflow)
	}
}

// A reload that changes a rule resolves its firing alerts: their groups
// start over in an empty window.
func TestLifecycleReloadResolves(t *testing.T) {
	e, got, _ := collectAll(t, lifecycleRule, Config{})
	(&scanner{e: e}).scan("10.0.0.5", 10, 20)
	if err := e.Reload(mustRules(t, strings.Replace(lifecycleRule, "window: 1m", "window: 2m", 1))); err != nil {
		t.Fatal(err)
	}
	last := (*got)[len(*got)-1]
	if last.Status != alert.StatusResolved || !strings.Contains(last.Message, "rule changed") {
		t.Fatalf("after reload: %s %s", last.Status, last.Message)
	}
}

func events(as []*alert.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Event+"@"+alert.FormatNumber(a.Value))
	}
	return out
}

// BenchmarkLifecycleFiringFlow is the cost of a flow of a firing group:
// the window update plus the lookup and update of its firing state. It
// allocates nothing.
func BenchmarkLifecycleFiringFlow(b *testing.B) {
	e, err := New(Config{}, mustRules(b, lifecycleRule))
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]flow.Flow, 256)
	for i := range batch {
		batch[i] = synFlow("10.0.0.5", "10.0.0.9", uint16(i), t0)
	}
	e.Process(batch) // fires
	if e.Stats().Rules[0].Firing != 1 {
		b.Fatal("not firing")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Process(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/flow")
}

// A top rule's alert resolves once its group leaves the top k, whatever
// its value, and a per-flow rule's once its group is quiet for
// resolve_after (1m by default); both carry their totals.
func TestLifecycleTopAndPerFlow(t *testing.T) {
	e, got, _ := collectAll(t, `
rules:
  - id: top
    severity: low
    top: {by: flows, k: 1}
    group_by: [src_addr]
    window: 1m
    resolve_after: 20s
  - id: telnet
    severity: low
    where: "dst_port == 23"
    group_by: [src_addr]
`, Config{})
	at := 0
	send := func(src string, port uint16, n int) {
		var b []flow.Flow
		for range n {
			b = append(b, synFlow(src, "10.0.0.9", port, t0.Add(time.Duration(at)*time.Second)))
		}
		e.Process(b)
		at++
	}
	for range 30 { // 10.0.0.5 on top, and on telnet
		send("10.0.0.5", 23, 3)
		send("10.0.0.6", 80, 1)
	}
	for range 60 { // 10.0.0.6 takes the top; 10.0.0.5 stays, out of it
		send("10.0.0.6", 80, 20)
		send("10.0.0.5", 80, 1)
	}
	byRule := map[string][]string{}
	for _, a := range *got {
		byRule[a.Rule] = append(byRule[a.Rule], a.Group["src_addr"].(string)+":"+a.Status)
	}
	if want := []string{"10.0.0.5:firing", "10.0.0.6:firing", "10.0.0.5:resolved"}; !slices.Equal(onlyStatus(byRule["top"]), want) {
		t.Errorf("top: %v, want %v", byRule["top"], want)
	}
	if want := []string{"10.0.0.5:firing", "10.0.0.5:resolved"}; !slices.Equal(byRule["telnet"], want) {
		t.Errorf("telnet: %v, want %v", byRule["telnet"], want)
	}
	last := (*got)[len(*got)-1]
	for _, a := range *got {
		if a.Rule == "telnet" && a.Resolved() {
			last = a
		}
	}
	if !strings.Contains(last.Message, "90 flows") {
		t.Errorf("telnet resolved: %s", last.Message)
	}
}

// onlyStatus drops the escalations (same status, again).
func onlyStatus(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// A firing group's flows count for it whatever their value: those whose
// group's value fell far below the threshold (under a tenth, where the
// rule keeps no samples) still join its totals while it fires.
func TestLifecycleFiringCountsLowFlows(t *testing.T) {
	e, got, _ := collectAll(t, `
rules:
  - id: volume
    severity: high
    sum: bytes
    group_by: [dst_addr]
    window: 10s
    threshold: 100000
    resolve_after: 30s
    escalate: []
`, Config{})
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	e.Process([]flow.Flow{volumeFlow("10.0.0.5", "10.0.0.9", 443, 200000, at(0))})
	for s := 1; s < 80; s++ {
		f := volumeFlow("10.1.0.1", "10.1.0.2", 80, 10, at(s)) // the clock moves
		if s >= 20 && s < 30 {
			f = volumeFlow("10.0.0.5", "10.0.0.9", 443, 10, at(s)) // the group, at 10-100 bytes
		}
		e.Process([]flow.Flow{f})
	}
	if len(*got) != 2 || (*got)[1].Status != alert.StatusResolved {
		t.Fatalf("emissions %v, want fire, resolved", events(*got))
	}
	if m := (*got)[1].Message; !strings.Contains(m, "11 flows") {
		t.Errorf("resolved message %q: want the 10 low flows counted with the crossing one", m)
	}
}
