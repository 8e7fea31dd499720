package rediswindow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/rules"
)

// BenchmarkEnginePack runs the bundled rule pack over gen's background
// flow mix with the memory store and with the Redis store (standalone and
// Cluster, flusher running against a real server), to compare flows/s.
func BenchmarkEnginePack(b *testing.B) {
	set, err := rules.LoadFS(examples.Rules, "rules")
	if err != nil {
		b.Fatal(err)
	}
	flows := gen.BackgroundFlows(7, 1<<16)
	run := func(b *testing.B, store window.Store) {
		e, err := engine.New(engine.Config{Store: store}, set)
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]flow.Flow, 256)
		span := flows[len(flows)-1].EventTime().Sub(flows[0].EventTime()) + time.Second
		b.ReportAllocs()
		b.ResetTimer()
		for i, round := 0, 0; i < b.N; round++ {
			for j := 0; j < len(flows) && i < b.N; j += len(batch) {
				n := min(copy(batch, flows[j:]), b.N-i)
				for k := range batch[:n] {
					shift := time.Duration(round) * span
					batch[k].TimeFlowEnd = batch[k].TimeFlowEnd.Add(shift)
					batch[k].TimeFlowStart = batch[k].TimeFlowStart.Add(shift)
					batch[k].TimeReceived = batch[k].TimeReceived.Add(shift)
				}
				e.Process(batch[:n])
				i += n
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	}
	b.Run("memory", func(b *testing.B) { run(b, window.NewMemoryStore()) })
	open := func(b *testing.B, url string) *rediswindow.Store {
		cfg := rediswindow.DefaultConfig()
		cfg.URL = url
		s, err := rediswindow.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	b.Run("redis", func(b *testing.B) {
		srv := redistest.StartServer(b)
		s := open(b, "redis://"+srv.Addr+"/0")
		run(b, s)
		st := s.Stats()
		b.ReportMetric(float64(st.Commands)/float64(max(1, st.Updates)), "cmds/update")
	})
	b.Run("cluster", func(b *testing.B) {
		srvs := redistest.StartCluster(b, 3)
		s := open(b, "redis+cluster://"+strings.Join(redistest.Addrs(srvs), ","))
		run(b, s)
		st := s.Stats()
		b.ReportMetric(float64(st.Commands)/float64(max(1, st.Updates)), "cmds/update")
	})
}
