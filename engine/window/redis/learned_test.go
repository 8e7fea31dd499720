package rediswindow_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

const newPortRule = `
rules:
  - id: new-port
    severity: medium
    group_by: [src_addr]
    new_terms: {field: dst_port, learning: 0s}
    suppress: 1s
`

// portFlows are flows of src to the given ports, a second apart from at.
func portFlows(src string, at time.Time, ports ...uint16) []flow.Flow {
	var out []flow.Flow
	for i, p := range ports {
		t := at.Add(time.Duration(i) * time.Second)
		f := flow.Flow{Type: flow.TypeFile, SrcAddr: netip.MustParseAddr(src),
			DstAddr: netip.MustParseAddr("198.51.100.1"), SrcPort: 40000, DstPort: p,
			RawBytes: 100, RawPackets: 1, SamplingRate: 1, TimeFlowStart: t, TimeFlowEnd: t}
		f.SetProto(flow.ProtoTCP)
		f.Renormalise()
		out = append(out, f)
	}
	return out
}

// Two instances on one Redis share what their rules learn: the ports one
// learned are not new to the other after a sync, and the other way round.
func TestLearnedStateSharedThroughRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	set, err := rules.LoadBytes("learn.yaml", []byte(newPortRule))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type instance struct {
		store *rediswindow.Store
		eng   *engine.Engine
		got   []*alert.Alert
	}
	start := func() *instance {
		cfg := rediswindow.DefaultConfig()
		cfg.URL = "redis://" + srv.Addr + "/0"
		st, err := rediswindow.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		in := &instance{store: st}
		in.eng, err = engine.New(engine.Config{Store: st, Emit: func(a *alert.Alert) { in.got = append(in.got, a) }}, set)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	sync := func(in *instance) int {
		n, err := engine.SyncLearned(ctx, in.store, func(fn func(*engine.Engine)) { fn(in.eng) })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a, b := start(), start()
	if n := sync(a); n != 0 {
		t.Fatalf("an empty Redis gave %d rules", n)
	}
	a.eng.Process(portFlows("10.0.0.1", t0, 443, 80, 22))
	if len(a.got) != 3 {
		t.Fatalf("instance a: %d alerts for 3 first ports, want 3", len(a.got))
	}
	sync(a)
	if n := sync(b); n != 1 {
		t.Fatalf("instance b took %d rules from Redis, want 1", n)
	}
	b.eng.Process(portFlows("10.0.0.1", t0.Add(time.Minute), 443, 80, 22, 3389))
	if len(b.got) != 1 || b.got[0].NewTerm.Term != "3389" {
		t.Fatalf("instance b: %d alerts, want 1 for port 3389 only", len(b.got))
	}
	sync(b)
	sync(a)
	a.eng.Process(portFlows("10.0.0.1", t0.Add(2*time.Minute), 3389, 443, 8080))
	if len(a.got) != 4 || a.got[3].NewTerm.Term != "8080" {
		t.Fatalf("instance a: %d alerts, want a fourth for 8080 only", len(a.got))
	}
}
