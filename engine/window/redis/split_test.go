package rediswindow_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/ingest/pcap"
	"github.com/flowguard/flowguard/rules"
)

// The event time processed between two flush rounds, per input: a round
// stands for one flush interval, in which every instance flushes once, in
// turn. The generated traffic spans an hour at a few flows a second.
var splitSteps = map[string]time.Duration{"captures": 200 * time.Millisecond, "generated": 2 * time.Second}

// splitLatency is the latency the store states, in rounds: a group whose
// combined value crosses its threshold in a round fires by the end of the
// round two rounds later.
const splitLatency = 2

// Any split of the flows over 1, 2 and 4 engines sharing one redis-server
// raises the same set of (rule, group) alerts as one engine with the
// memory store, each within splitLatency flush rounds of the round in
// which the memory store raised it, with the groups far below their
// thresholds held back (Stats.Held); one split runs on a 3-master
// Cluster. Four unshared memory stores miss some of the alerts: they need
// the parts to meet. The traffic: the attack captures of
// testdata (real nmap scans, floods, brute force, ...) run one after the
// other, and generated traffic (gen's background mix with scans spread
// over many sources and a sum crossing only in combination).
func TestSplitRaisesTheMemoryStoresAlerts(t *testing.T) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.StartServer(t)
	cluster := "" // started for its one run
	inputs := map[string][]flow.Flow{
		"captures":  captureFlows(t),
		"generated": generatedFlows(),
	}
	for _, name := range []string{"captures", "generated"} {
		flows := inputs[name]
		step := splitSteps[name]
		one := func(int, *flow.Flow) int { return 0 }
		want := runSplit(t, set, flows, step, []window.Store{window.NewMemoryStore()}, one)
		if len(want) == 0 {
			t.Fatalf("%s: the memory store raised no alert: nothing to compare", name)
		}
		// Four unshared memory stores miss alerts: the test needs the parts to meet.
		apart := []window.Store{window.NewMemoryStore(), window.NewMemoryStore(), window.NewMemoryStore(), window.NewMemoryStore()}
		if got := runSplit(t, set, flows, step, apart, func(i int, _ *flow.Flow) int { return i % 4 }); len(got) >= len(want) {
			t.Errorf("%s: 4 unshared memory stores raised %d alerts, the shared one %d: no alert needs the parts to meet", name, len(got), len(want))
		}
		for _, k := range []int{1, 2, 4} {
			splits := map[string]func(i int, f *flow.Flow) int{
				"random": func(i int, _ *flow.Flow) int { return int(rand.New(rand.NewPCG(uint64(i), 9)).IntN(k)) },
				"by-source": func(_ int, f *flow.Flow) int {
					b := f.SrcAddr.As16()
					return int(b[15]) % k
				},
				"skewed": func(i int, _ *flow.Flow) int { // 7 flows in 8 to the first engine
					if i%8 != 0 || k == 1 {
						return 0
					}
					return 1 + (i/8)%(k-1)
				},
			}
			for _, sname := range []string{"random", "by-source", "skewed", "cluster"} {
				if (k == 1 && sname != "random") || (sname == "cluster" && (k != 2 || name != "captures")) {
					continue
				}
				t.Run(fmt.Sprintf("%s/%d/%s", name, k, sname), func(t *testing.T) {
					url := "redis://" + srv.Addr + "/0"
					if sname == "cluster" { // a random split, on a 3-master Cluster
						if cluster == "" {
							cluster = "redis+cluster://" + strings.Join(redistest.Addrs(redistest.StartCluster(t, 3)), ",")
						}
						url = cluster
					}
					cfg := rediswindow.Config{URL: url, FlushInterval: time.Hour,
						KeyPrefix: fmt.Sprintf("split%d:", prefixes.Add(1))}
					stores := make([]*rediswindow.Store, k)
					st := make([]window.Store, k)
					for i := range stores {
						stores[i] = open(t, cfg)
						st[i] = stores[i]
					}
					split := splits[sname]
					if split == nil {
						split = splits["random"]
					}
					got := runSplit(t, set, flows, step, st, split)
					compareSplit(t, want, got)
					var held, upd, cmds uint64
					for _, s := range stores {
						st := s.Stats()
						held, upd, cmds = held+st.Held, upd+st.Updates, cmds+st.Commands
						if st.FlushErrors != 0 || st.Lost != 0 || st.Dropped != 0 {
							t.Errorf("store stats %+v: want no errors, losses or drops", st)
						}
					}
					if held == 0 {
						t.Errorf("no update held back of %d: every group shipped", upd)
					}
					t.Logf("%d alerts; %d of %d updates held; %d commands (%.4f per update)",
						len(got), held, upd, cmds, float64(cmds)/float64(max(upd, 1)))
				})
			}
		}
	}
}

// firstAlert is when a (rule, group) first fired: the round.
type firstAlert map[string]int

// runSplit runs flows, in event-time order, through one engine per store,
// split choosing the engine of each flow, in steps of step event time; after each step
// every store flushes in turn, then every engine pulls its exchange. It
// returns the round in which each (rule, group) first fired.
func runSplit(t *testing.T, set *rules.Set, flows []flow.Flow, step time.Duration, st []window.Store, split func(int, *flow.Flow) int) firstAlert {
	t.Helper()
	round := 0
	got := firstAlert{}
	engines := make([]*engine.Engine, len(st))
	for i := range engines {
		var err error
		engines[i], err = engine.New(engine.Config{Store: st[i], Emit: func(a *alert.Alert) {
			k := alertKey(a)
			if _, ok := got[k]; !ok {
				got[k] = round
			}
		}}, set)
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	parts := make([][]flow.Flow, len(engines))
	exchange := func() {
		for _, s := range st {
			if rs, ok := s.(*rediswindow.Store); ok {
				if err := rs.Flush(ctx); err != nil {
					t.Fatalf("flush: %v", err)
				}
			}
		}
		for _, e := range engines {
			e.Exchange()
		}
		round++
	}
	end := flows[0].EventTime().Add(step)
	for i := 0; i <= len(flows); i++ {
		if i == len(flows) || !flows[i].EventTime().Before(end) {
			for j, e := range engines {
				e.Process(parts[j])
				parts[j] = parts[j][:0]
			}
			exchange()
			if i == len(flows) {
				break
			}
			for !flows[i].EventTime().Before(end) {
				end = end.Add(step)
			}
		}
		j := split(i, &flows[i])
		parts[j] = append(parts[j], flows[i])
	}
	for range splitLatency {
		exchange()
	}
	return got
}

// alertKey names an alert's rule and group.
func alertKey(a *alert.Alert) string {
	keys := make([]string, 0, len(a.Group))
	for k := range a.Group {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(a.Rule)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, a.Group[k])
	}
	return b.String()
}

// compareSplit checks that got has the alerts of want, each within
// splitLatency rounds, and no other.
func compareSplit(t *testing.T, want, got firstAlert) {
	t.Helper()
	for k, r := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing alert %s (memory store: round %d)", k, r)
		case g > r+splitLatency:
			t.Errorf("alert %s in round %d, memory store in round %d: later than %d rounds", k, g, r, splitLatency)
		}
	}
	for k, r := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("extra alert %s in round %d: the memory store raised none", k, r)
		}
	}
}

// captureFlows meters the attack captures of testdata into flows and
// lays them end to end in time, a minute apart.
func captureFlows(t *testing.T) []flow.Flow {
	t.Helper()
	names := []string{"portscan", "hostsweep", "dscan", "bruteforce", "synflood", "synflood-ports",
		"synflood-randsrc", "udpflood", "icmpflood", "reflection", "fragflood", "upload"}
	var out []flow.Flow
	var at time.Time
	for _, n := range names {
		r, err := pcap.Open(filepath.Join("..", "..", "..", "testdata", n+".pcap"), pcap.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var fs []flow.Flow
		err = r.Run(context.Background(), func(b []flow.Flow) { fs = append(fs, b...) })
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		sortFlows(fs)
		if len(fs) == 0 {
			continue
		}
		if !at.IsZero() {
			shift := at.Sub(fs[0].EventTime())
			for i := range fs {
				shiftFlow(&fs[i], shift)
			}
		}
		out = append(out, fs...)
		at = fs[len(fs)-1].EventTime().Add(time.Minute)
	}
	return out
}

// generatedFlows is gen's background mix with, over it, a vertical scan
// of 300 ports and a host sweep of 80 hosts each from one source, and a
// flood of 30 sources to one host: many groups, few near a threshold.
func generatedFlows() []flow.Flow {
	fs := gen.BackgroundFlows(11, 30000)
	t0 := fs[0].EventTime()
	span := fs[len(fs)-1].EventTime().Sub(t0)
	rng := rand.New(rand.NewPCG(5, 5))
	add := func(src, dst netip.Addr, dport uint16, at time.Duration, pkts uint64) {
		f := flow.Flow{Type: flow.TypeFile, SrcAddr: src, DstAddr: dst, SrcPort: uint16(40000 + rng.IntN(20000)),
			DstPort: dport, RawBytes: 44 * pkts, RawPackets: pkts, SamplingRate: 1,
			TimeFlowStart: t0.Add(at), TimeFlowEnd: t0.Add(at)}
		f.SetProto(flow.ProtoTCP)
		f.SetTCPFlags(flow.TCPSyn)
		f.Renormalise()
		fs = append(fs, f)
	}
	scanner, sweeper := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.8")
	victim := netip.MustParseAddr("10.1.2.3")
	for p := range 300 {
		add(scanner, victim, uint16(1+p), span/3+time.Duration(p)*10*time.Millisecond, 1)
	}
	for h := range 80 {
		add(sweeper, netip.AddrFrom4([4]byte{10, 9, 0, byte(h + 1)}), 445, span/2+time.Duration(h)*20*time.Millisecond, 1)
	}
	for s := range 30 {
		src := netip.AddrFrom4([4]byte{203, 0, 113, byte(s + 1)})
		for i := range 40 {
			add(src, victim, 80, 2*span/3+time.Duration(i)*25*time.Millisecond, 400)
		}
	}
	sortFlows(fs)
	return fs
}

func sortFlows(fs []flow.Flow) {
	slices.SortStableFunc(fs, func(a, b flow.Flow) int { return a.EventTime().Compare(b.EventTime()) })
}

func shiftFlow(f *flow.Flow, d time.Duration) {
	f.TimeFlowStart = f.TimeFlowStart.Add(d)
	f.TimeFlowEnd = f.TimeFlowEnd.Add(d)
	if !f.TimeReceived.IsZero() {
		f.TimeReceived = f.TimeReceived.Add(d)
	}
}
