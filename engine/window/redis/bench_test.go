package rediswindow_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
)

// benchStores runs fn over the memory store, and over the Redis store on a
// standalone server and on a three-master Cluster with the flusher running
// at its default interval. Redis runs report cmds/flow: commands sent by
// flushes per update. "hotpath" is the standalone store with an hourly
// flush: the cost of the engine goroutine's side alone, without the
// flusher and redis-server competing for the CPUs.
func benchStores(b *testing.B, fn func(b *testing.B, s window.Store)) {
	b.Run("memory", func(b *testing.B) { fn(b, window.NewMemoryStore()) })
	for _, mode := range []string{"hotpath", "standalone", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			var cfg rediswindow.Config
			if mode == "hotpath" {
				cfg.FlushInterval = time.Hour
			}
			if mode != "cluster" {
				cfg.URL = "redis://" + redistest.StartServer(b).Addr
			} else {
				cfg.URL = "redis+cluster://" + strings.Join(redistest.Addrs(redistest.StartCluster(b, 3)), ",")
			}
			s := open(b, cfg)
			fn(b, s)
			b.StopTimer()
			if err := s.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			st := s.Stats()
			flows := float64(st.Updates + st.Dropped)
			if flows > 0 {
				b.ReportMetric(float64(st.Commands)/flows, "cmds/flow")
				// Updates Redis could not absorb in time, dropped at
				// MaxPending.
				b.ReportMetric(float64(st.Dropped)/flows, "dropped/flow")
			}
			if st.Lost > 0 || st.Outages > 0 {
				b.Logf("%d deltas lost in failed flushes, %d outages", st.Lost, st.Outages)
			}
		})
	}
}

// keys returns n group keys of 8 bytes (an IPv4 pair).
func keys(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = binary.BigEndian.AppendUint64(nil, 0xc6336400_0a000000+uint64(i)*7919)
	}
	return out
}

// BenchmarkAdd feeds a bytes Sum window: 10000 groups, a flow every
// microsecond of event time.
func BenchmarkAdd(b *testing.B) {
	benchStores(b, func(b *testing.B, s window.Store) {
		w := openWindow(b, s, window.Spec{Name: "exfil", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
		ks := keys(10000)
		now := t0
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			now += int64(time.Microsecond)
			w.Add(ks[i%len(ks)], now, 1500)
		}
	})
}

// BenchmarkAddDistinct feeds a port-scan Distinct window: 1000 source and
// destination pairs, each probing ports in turn.
func BenchmarkAddDistinct(b *testing.B) {
	benchStores(b, func(b *testing.B, s window.Store) {
		w := openWindow(b, s, window.Spec{Name: "port-scan", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
		ks := keys(1000)
		now := t0
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			now += int64(time.Microsecond)
			w.AddDistinct(ks[i%len(ks)], now, uint64(i/len(ks))%65536)
		}
	})
}

// BenchmarkLive feeds Sum and Distinct windows at live pace: event time
// moves 2.5 µs a flow (400,000 flows/s, so a flush interval holds 80,000
// flows), over a million groups, with the rules' thresholds set (as the
// engine sets them): a group ships only past its share, here one group in
// a thousand, which gets 200 flows a bucket more than the rest. Reports
// the commands and bytes sent to Redis per flow; shipall is the same
// with Config.ShipAll, every update sent as before the scheme. Every
// group is fed once before the timer starts: the figures are the steady
// state, the windows full.
func BenchmarkLive(b *testing.B) {
	for _, mode := range []string{"memory", "filtered", "shipall"} {
		b.Run(mode, func(b *testing.B) {
			var s window.Store = window.NewMemoryStore()
			var rs *rediswindow.Store
			if mode != "memory" {
				rs = open(b, rediswindow.Config{URL: "redis://" + redistest.StartServer(b).Addr, ShipAll: mode == "shipall"})
				s = rs
			}
			const groups = 1 << 20
			sum := openWindow(b, s, window.Spec{Name: "bytes", Kind: window.Sum, Size: time.Minute, MaxKeys: groups}).Window.(window.SumWindow)
			dist := openWindow(b, s, window.Spec{Name: "ports", Kind: window.Distinct, Size: time.Minute, MaxKeys: groups}).Window.(window.DistinctWindow)
			for _, w := range []any{sum, dist} {
				if t, ok := w.(window.Thresholder); ok {
					t.SetThreshold(1000, 0)
				}
			}
			ks := keys(groups)
			now := t0
			feed := func(i int) {
				now += int64(2500 * time.Nanosecond)
				k := ks[i%groups]
				if i%5 == 0 { // a hot group in a thousand
					k = ks[(i/5)%1000*1000]
				}
				sum.Add(k, now, 10)
				dist.AddDistinct(k, now, uint64(i))
			}
			for i := range groups { // every group live: the windows at their size
				feed(i)
			}
			var before rediswindow.Stats
			if rs != nil {
				before = rs.Stats()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				feed(groups + i)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
			if rs == nil {
				return
			}
			if err := rs.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			st := rs.Stats()
			b.ReportMetric(float64(st.Commands-before.Commands)/float64(b.N), "cmds/flow")
			b.ReportMetric(float64(st.Bytes-before.Bytes)/float64(b.N), "bytes/flow")
			b.ReportMetric(float64(st.Held-before.Held)/float64(max(st.Updates-before.Updates, 1)), "held/update")
		})
	}
}
