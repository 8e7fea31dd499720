package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

func volumeFlow(src, dst string, dport uint16, bytes uint64, at time.Time) flow.Flow {
	f := flow.Flow{
		Type:    flow.TypeFile,
		SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: 40000, DstPort: dport,
		RawBytes: bytes, RawPackets: 1 + bytes/1400, SamplingRate: 1,
		TimeFlowStart: at.Add(-time.Second), TimeFlowEnd: at,
	}
	f.SetProto(flow.ProtoTCP)
	f.SetTCPFlags(flow.TCPSyn | flow.TCPAck | flow.TCPFin)
	f.Renormalise()
	return f
}

const baselineRule = `
rules:
  - id: above-normal
    severity: high
    sum: bytes
    group_by: [src_addr]
    window: 1m
    threshold: 1MB
    suppress: 30m
    baseline: {k: 4, warmup: 12}
`

// volumeRun sends, for each host, one flow a second for minutes minutes,
// of bytes(host, minute) spread over the minute.
func volumeRun(e *Engine, start time.Time, minutes int, hosts []string, bytes func(h, m int) uint64) {
	var batch []flow.Flow
	for m := range minutes {
		for s := range 60 {
			at := start.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
			for h, host := range hosts {
				batch = append(batch, volumeFlow(host, "198.51.100.9", 443, bytes(h, m)/60, at))
			}
		}
		e.Process(batch)
		batch = batch[:0]
	}
}

// A host whose volume steps up tenfold fires once, with its learned
// normal; a host that is always busy (far above the floor) and one that
// drifts slowly upward do not.
func TestBaselineStepUpFiresBusyAndDriftDoNot(t *testing.T) {
	e, got := collect(t, mustRules(t, baselineRule))
	rng := rand.New(rand.NewPCG(1, 2))
	hosts := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	volumeRun(e, t0, 180, hosts, func(h, m int) uint64 {
		noise := 0.9 + 0.2*rng.Float64()
		switch h {
		case 0: // 3 MB a minute, then 30 MB from minute 150
			if m >= 150 {
				return uint64(30e6 * noise)
			}
			return uint64(3e6 * noise)
		case 1: // always 200 MB a minute
			return uint64(200e6 * noise)
		default: // 3 MB growing by 1% a minute: about 18 MB at the end
			return uint64(3e6 * noise * pow(1.01, m))
		}
	})
	if len(*got) != 1 {
		for _, a := range *got {
			t.Log(a.Message)
		}
		t.Fatalf("got %d alerts, want 1", len(*got))
	}
	a := (*got)[0]
	if a.Group["src_addr"] != "10.0.0.1" || a.Baseline == nil {
		t.Fatalf("alert %+v", a)
	}
	if b := a.Baseline; b.Mean < 2.5e6 || b.Mean > 3.5e6 || b.Samples < 100 || b.Deviation < 4 || b.Season != "all" {
		t.Errorf("baseline %+v", b)
	}
	if a.FiredAt.Before(t0.Add(150*time.Minute)) || a.FiredAt.After(t0.Add(152*time.Minute)) {
		t.Errorf("fired at %v", a.FiredAt)
	}
	js, _ := json.Marshal(a)
	if !bytes.Contains(js, []byte(`"baseline":{"mean":`)) {
		t.Errorf("JSON lacks the baseline: %s", js)
	}
	s, ok := e.Learned("above-normal", 0)
	if !ok || s.Groups != 3 || len(s.Top) != 3 || s.Top[0].Group["src_addr"] != "10.0.0.2" || s.Top[0].Mean < 150e6 {
		t.Errorf("learned %+v", s)
	}
}

func pow(x float64, n int) float64 {
	r := 1.0
	for range n {
		r *= x
	}
	return r
}

// Nothing fires before the warm-up, however high the value.
func TestBaselineWarmup(t *testing.T) {
	e, got := collect(t, mustRules(t, baselineRule))
	volumeRun(e, t0, 13, []string{"10.0.0.1"}, func(_, m int) uint64 {
		if m >= 10 {
			return 100e6
		}
		return 2e6
	})
	if len(*got) != 0 {
		t.Fatalf("got %d alerts during the warm-up", len(*got))
	}
}

// With hourly seasonality a host busy every day at 14:00 does not fire at
// 14:00, but the same volume at 03:00 does.
func TestBaselineSeasonality(t *testing.T) {
	e, got := collect(t, mustRules(t, `
rules:
  - id: seasonal
    severity: high
    sum: bytes
    group_by: [src_addr]
    window: 10m
    threshold: 1MB
    suppress: 2h
    baseline: {seasonality: hour, warmup: 6}
`))
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var batch []flow.Flow
	for d := range 4 {
		for m := 0; m < 24*60; m++ {
			for s := 0; s < 60; s += 10 {
				at := day.Add(time.Duration(d)*24*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
				v := uint64(2e6+(m%7)*1e5) / 6 // about 20 MB per window
				if at.Hour() == 14 {
					v *= 20
				}
				if d == 3 && at.Hour() == 3 {
					v *= 20
				}
				batch = append(batch, volumeFlow("10.0.0.1", "198.51.100.9", 443, v, at))
			}
		}
		e.Process(batch)
		batch = batch[:0]
	}
	if len(*got) != 1 || (*got)[0].FiredAt.Hour() != 3 || (*got)[0].Baseline.Season != "hour 3" {
		for _, a := range *got {
			t.Log(a.Message, a.FiredAt, a.FirstSeen)
		}
		t.Fatalf("got %d alerts, want 1 at 03:00", len(*got))
	}
}

const termsRule = `
rules:
  - id: new-port
    severity: medium
    group_by: [src_addr]
    where: "proto == 6"
    new_terms: {field: dst_port, history: 1d, learning: 1h, max_terms: 4}
    suppress: 1m
    message: "{src_addr} used port {term}"
`

// A group's new term fires once its learning is over, once; known terms
// do not; a term not seen within the history is new again.
func TestNewTerms(t *testing.T) {
	e, got := collect(t, mustRules(t, termsRule))
	at := t0
	send := func(port uint16, d time.Duration) {
		at = at.Add(d)
		// UDP flows around it, which the rule ignores, move the engine's
		// clock.
		clock := volumeFlow("10.9.9.9", "198.51.100.9", 53, 100, at)
		clock.SetProto(flow.ProtoUDP)
		e.Process([]flow.Flow{clock, clock, volumeFlow("10.0.0.1", "198.51.100.9", port, 100, at), clock})
	}
	send(443, 0)
	send(80, time.Minute)
	send(22, 30*time.Minute) // new during the learning: learned, no alert
	for range 5 {
		send(443, 10*time.Minute)
	}
	send(80, time.Minute)
	if len(*got) != 0 {
		t.Fatalf("got %d alerts for known terms", len(*got))
	}
	send(3389, time.Minute)
	send(3389, 2*time.Minute)
	if len(*got) != 1 {
		t.Fatalf("got %d alerts, want 1 for the new port", len(*got))
	}
	a := (*got)[0]
	if a.NewTerm == nil || a.NewTerm.Term != "3389" || a.NewTerm.Field != "dst_port" || a.NewTerm.Known != 3 ||
		a.Message != "10.0.0.1 used port 3389" {
		t.Fatalf("alert %+v %+v", a, a.NewTerm)
	}
	// 22 was last seen more than a day ago: new again.
	send(22, 25*time.Hour)
	if len(*got) != 2 || (*got)[1].NewTerm.Term != "22" {
		for _, a := range *got {
			t.Log(a.Message, a.FiredAt)
		}
		t.Fatalf("got %d alerts, want the second for port 22", len(*got))
	}
	// The table holds 4 terms: a fifth evicts those older than the
	// history (443, 80, 3389).
	send(8080, 2*time.Minute)
	if len(*got) != 3 || (*got)[2].NewTerm.Term != "8080" || (*got)[2].NewTerm.Known != 1 {
		t.Fatalf("got %d alerts, want the third for port 8080", len(*got))
	}
	if s, _ := e.Learned("new-port", 0); s.Evicted != 3 || s.Top[0].Terms != 2 || s.Groups != 1 {
		t.Errorf("learned %+v", s)
	}
}

const beaconRules = `
rules:
  - id: beacon
    severity: high
    where: "proto == 6"
    beacon: {min_count: 10}
`

// synAt is a connection start of src to dst:port at at moving size bytes.
func synAt(src, dst string, port uint16, at time.Time, size uint64) flow.Flow {
	f := volumeFlow(src, dst, port, size, at.Add(time.Second))
	f.TimeFlowStart = at
	return f
}

// A pair calling every 30 s ± 10% (missing two beats) fires once, with
// its interval and jitter; a pair with random intervals, a busy pair, and
// a long connection re-exported every 30 s do not.
func TestBeacon(t *testing.T) {
	e, got := collect(t, mustRules(t, beaconRules))
	rng := rand.New(rand.NewPCG(3, 4))
	var flows []flow.Flow
	at := t0
	for i := range 40 {
		at = at.Add(time.Duration(float64(30*time.Second) * (0.9 + 0.2*rng.Float64())))
		if i == 12 || i == 25 {
			continue // missed beats
		}
		flows = append(flows, synAt("10.0.0.1", "203.0.113.5", 443, at, 900+uint64(rng.IntN(100))))
	}
	at = t0
	for range 40 { // exponential intervals, mean 30 s
		at = at.Add(time.Duration(rng.ExpFloat64() * float64(30*time.Second)))
		flows = append(flows, synAt("10.0.0.2", "203.0.113.6", 443, at, uint64(500+rng.IntN(50000))))
	}
	at = t0
	for range 600 { // browsing: every 0.5 to 5 s
		at = at.Add(time.Duration((0.5 + 4.5*rng.Float64()) * float64(time.Second)))
		flows = append(flows, synAt("10.0.0.3", "203.0.113.7", 443, at, uint64(500+rng.IntN(50000))))
	}
	for i := range 40 { // one connection, exported every 30 s
		f := synAt("10.0.0.4", "203.0.113.8", 22, t0.Add(time.Duration(i)*30*time.Second), 5000)
		if i > 0 {
			f.SetTCPFlags(flow.TCPAck | flow.TCPPsh)
		}
		flows = append(flows, f)
	}
	sortByEnd(flows)
	e.Process(flows)
	if len(*got) != 1 {
		for _, a := range *got {
			t.Log(a.Message)
		}
		t.Fatalf("got %d alerts, want 1", len(*got))
	}
	a := (*got)[0]
	if a.Group["src_addr"] != "10.0.0.1" || a.Group["dst_port"] != uint64(443) || a.Beacon == nil {
		t.Logf("%T", a.Group["dst_port"])
		t.Fatalf("alert %+v", a)
	}
	if b := a.Beacon; b.Interval < 28 || b.Interval > 32 || b.Jitter > 0.1 || b.Count < 10 || b.Score < 0.8 {
		t.Errorf("beacon %+v", b)
	}
	s, _ := e.Learned("beacon", 1)
	if len(s.Top) != 1 || s.Top[0].Group["src_addr"] != "10.0.0.1" {
		t.Errorf("learned %+v", s)
	}
}

func sortByEnd(fs []flow.Flow) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].TimeFlowEnd.Before(fs[j-1].TimeFlowEnd); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// Learned state saved by one engine and loaded by another (a restart)
// carries on: terms known before the restart are not new after it, and
// the baseline is warm at once.
func TestLearnedStateSurvivesRestart(t *testing.T) {
	set := mustRules(t, termsRule+strings.TrimPrefix(baselineRule, "\nrules:\n"))
	e1, got1 := collect(t, set)
	volumeRun(e1, t0, 120, []string{"10.0.0.1"}, func(_, m int) uint64 { return 3e6 })
	path := filepath.Join(t.TempDir(), "state", LearnedFile)
	if err := WriteLearnedFile(path, e1.SaveLearned()); err != nil {
		t.Fatal(err)
	}
	if len(*got1) != 0 {
		t.Fatalf("first engine: %d alerts", len(*got1))
	}

	st, err := ReadLearnedFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Severity, floor and k change: what was learned stays.
	changed := strings.NewReplacer("severity: high", "severity: critical", "threshold: 1MB", "threshold: 2MB",
		"k: 4", "k: 5").Replace(baselineRule)
	e2, got2 := collect(t, mustRules(t, termsRule+strings.TrimPrefix(changed, "\nrules:\n")))
	if n := e2.LoadLearned(st); n != 2 {
		t.Fatalf("loaded %d rules, want 2", n)
	}
	// Port 443, learned by e1, is not new; 8443 is; the host's volume
	// tenfold fires at once.
	at := t0.Add(3 * time.Hour)
	e2.Process([]flow.Flow{volumeFlow("10.0.0.1", "198.51.100.9", 443, 100, at)})
	if len(*got2) != 0 {
		t.Fatalf("known term fired after the restart: %s", (*got2)[0].Message)
	}
	volumeRun(e2, at, 2, []string{"10.0.0.1"}, func(_, m int) uint64 { return 30e6 })
	rulesFired := map[string]int{}
	for _, a := range *got2 {
		rulesFired[a.Rule]++
	}
	if rulesFired["above-normal"] != 1 {
		t.Fatalf("alerts after the restart: %v", rulesFired)
	}

	// A rule whose learning changed (seasonality) starts afresh.
	e3, _ := collect(t, mustRules(t, strings.Replace(baselineRule, "{k: 4, warmup: 12}", "{seasonality: hour}", 1)))
	if n := e3.LoadLearned(st); n != 0 {
		t.Fatalf("a changed rule took %d learned states", n)
	}
}

// A reload keeps the learned state of unchanged rules (thresholds and k
// may change) and drops that of rules whose learning changed.
func TestLearnedStateSurvivesReload(t *testing.T) {
	e, got := collect(t, mustRules(t, termsRule))
	at := t0
	for _, p := range []uint16{443, 80} {
		e.Process([]flow.Flow{volumeFlow("10.0.0.1", "198.51.100.9", p, 100, at)})
	}
	if err := e.Reload(mustRules(t, termsRule+"    tags: [changed]\n")); err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * time.Hour)
	e.Process([]flow.Flow{volumeFlow("10.0.0.1", "198.51.100.9", 443, 100, at)})
	if len(*got) != 0 {
		t.Fatal("a known term fired after a reload")
	}
	if s, _ := e.Learned("new-port", 0); s.Groups != 1 || s.Top[0].Terms != 2 {
		t.Fatalf("learned after reload %+v", s)
	}
	if err := e.Reload(mustRules(t, `
rules:
  - id: new-port
    severity: medium
    group_by: [src_addr]
    new_terms: {field: [dst_port, proto], history: 1d, learning: 1h}
`)); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.Learned("new-port", 0); s.Groups != 0 {
		t.Fatalf("a changed rule kept %d groups", s.Groups)
	}
}

// Each learning rule holds at most its max groups; evictions are counted.
func TestLearnedGroupsCapped(t *testing.T) {
	e, _ := collect(t, mustRules(t, `
rules:
  - id: capped
    severity: low
    group_by: [src_addr]
    new_terms: {field: dst_port, max_groups: 2}
`))
	for i, src := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		e.Process([]flow.Flow{volumeFlow(src, "198.51.100.9", 443, 100, t0.Add(time.Duration(i)*time.Second))})
	}
	s, _ := e.Learned("capped", 0)
	if s.Groups != 2 || s.Evicted != 1 {
		t.Fatalf("groups %d evicted %d, want 2 and 1", s.Groups, s.Evicted)
	}
}

// In steady state the learning rules allocate nothing per flow.
func TestLearningAllocatesNothing(t *testing.T) {
	// No expiry sweep during the test: its window statistics allocate.
	e, err := New(Config{ExpireEvery: 1000 * time.Hour}, mustRules(t, baselineRule+`
  - id: new-port
    severity: medium
    group_by: [src_addr]
    new_terms: {field: dst_port}
  - id: beacon
    severity: high
    beacon: {min_count: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	var batch []flow.Flow
	for i := range 64 {
		batch = append(batch, synAt("10.0.0.1", "203.0.113.5", uint16(443+i%4), t0.Add(time.Duration(i)*10*time.Second), 1000))
	}
	e.Process(batch)
	var one [1]flow.Flow
	i := 64
	allocs := testing.AllocsPerRun(200, func() {
		one[0] = synAt("10.0.0.1", "203.0.113.5", uint16(443+i%4), t0.Add(time.Duration(i)*10*time.Second), 1000)
		i++
		e.Process(one[:])
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per flow", allocs)
	}
}

// KeepLearned loads the state file at start and saves it at stop: a
// second engine started on the same file knows what the first learned.
func TestKeepLearnedFile(t *testing.T) {
	store := LearnedFileStore{Path: filepath.Join(t.TempDir(), "learned", LearnedFile)}
	run := func(port uint16, at time.Time) []string {
		e, got := collect(t, mustRules(t, termsRule))
		ctx, cancel := context.WithCancel(context.Background())
		var stats LearnedStoreStats
		done := make(chan struct{})
		var mu sync.Mutex
		do := func(fn func(*Engine)) { mu.Lock(); defer mu.Unlock(); fn(e) }
		go func() { KeepLearned(ctx, []LearnedStore{store}, time.Hour, do, nil, &stats); close(done) }()
		time.Sleep(50 * time.Millisecond) // the first sync loads; flows come later as from listeners
		do(func(e *Engine) {
			clock := volumeFlow("10.9.9.9", "198.51.100.9", 53, 100, at)
			clock.SetProto(flow.ProtoUDP)
			e.Process([]flow.Flow{clock, clock, volumeFlow("10.0.0.1", "198.51.100.9", port, 100, at), clock})
		})
		cancel()
		<-done
		if stats.Syncs.Load() != 2 || stats.Errors.Load() != 0 {
			t.Fatalf("syncs %d errors %d", stats.Syncs.Load(), stats.Errors.Load())
		}
		var terms []string
		for _, a := range *got {
			terms = append(terms, a.NewTerm.Term)
		}
		return terms
	}
	run(443, t0)                                             // learning: no alert, 443 learned
	if got := run(443, t0.Add(2*time.Hour)); len(got) != 0 { // known after the restart
		t.Fatalf("after a restart: alerts for %v", got)
	}
	if got := run(22, t0.Add(3*time.Hour)); len(got) != 1 || got[0] != "22" {
		t.Fatalf("after a restart: alerts for %v, want 22", got)
	}
}

// Loading saved state never evicts: groups past the cap are left out.
func TestLoadLearnedNeverEvicts(t *testing.T) {
	src := `
rules:
  - id: capped
    severity: low
    group_by: [src_addr]
    new_terms: {field: dst_port, max_groups: 2}
`
	e1, _ := collect(t, mustRules(t, src))
	for i, s := range []string{"10.0.0.1", "10.0.0.2"} {
		e1.Process([]flow.Flow{volumeFlow(s, "198.51.100.9", 443, 100, t0.Add(time.Duration(i)*time.Second))})
	}
	e2, _ := collect(t, mustRules(t, src))
	e2.Process([]flow.Flow{volumeFlow("10.0.0.3", "198.51.100.9", 443, 100, t0)})
	e2.LoadLearned(e1.SaveLearned())
	s, _ := e2.Learned("capped", 0)
	if s.Groups != 2 || s.Evicted != 0 || s.Top[0].Group["src_addr"] == s.Top[1].Group["src_addr"] {
		t.Fatalf("after load: %+v", s)
	}
	found := false
	for _, g := range s.Top {
		found = found || g.Group["src_addr"] == "10.0.0.3"
	}
	if !found {
		t.Fatal("loading evicted the engine's own group")
	}
}
