package rediswindow_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
	"github.com/flowguard/flowguard/engine/window/storetest"
)

// t0 is an event time on a minute boundary.
const t0 = int64(1_699_999_980) * int64(time.Second)

func sec(s float64) int64 { return t0 + int64(s*float64(time.Second)) }

var prefixes atomic.Int64

// open opens a store on url with a key prefix of its own, unless prefix
// is given, and closes it when the test ends.
func open(tb testing.TB, cfg rediswindow.Config) *rediswindow.Store {
	tb.Helper()
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = fmt.Sprintf("test%d:", prefixes.Add(1))
	}
	s, err := rediswindow.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func openWindow(tb testing.TB, s window.Store, spec window.Spec) storetest.KindWindow {
	tb.Helper()
	return storetest.Open(tb, s, spec)
}

func TestConformanceStandalone(t *testing.T) {
	srv := redistest.StartServer(t)
	storetest.Run(t, func(t *testing.T) window.Store {
		return open(t, rediswindow.Config{URL: "redis://" + srv.Addr + "/0", FlushInterval: 20 * time.Millisecond})
	})
}

func TestConformanceCluster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	url := "redis+cluster://" + strings.Join(redistest.Addrs(nodes), ",")
	storetest.Run(t, func(t *testing.T) window.Store {
		return open(t, rediswindow.Config{URL: url, FlushInterval: 20 * time.Millisecond})
	})
}

// eventually retries f every 10ms for up to 10s.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A port scan whose flows alternate between two instances is one scan to
// both once they have flushed; two memory stores each see half of it.
func TestSharedPortScan(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var cfg rediswindow.Config
			if mode == "standalone" {
				cfg.URL = "redis://" + redistest.StartServer(t).Addr
			} else {
				cfg.Addrs = redistest.Addrs(redistest.StartCluster(t, 3))
			}
			cfg.FlushInterval = 20 * time.Millisecond
			cfg.KeyPrefix = fmt.Sprintf("scan%d:", prefixes.Add(1))
			a, b := open(t, cfg), open(t, cfg)
			testSharedPortScan(t, a, b, true)
		})
	}
	t.Run("memory", func(t *testing.T) {
		testSharedPortScan(t, window.NewMemoryStore(), window.NewMemoryStore(), false)
	})
}

func testSharedPortScan(t *testing.T, a, b window.Store, shared bool) {
	const (
		ports     = 200
		threshold = 150
	)
	spec := window.Spec{Name: "vertical-port-scan", Kind: window.Distinct, Size: time.Minute}
	wa, wb := openWindow(t, a, spec), openWindow(t, b, spec)
	key := []byte("198.51.100.23|10.20.30.40")
	var ra, rb window.Result
	for p := range ports {
		now := sec(float64(p) / 10) // 20s of scanning
		if p%2 == 0 {
			ra = wa.AddDistinct(key, now, uint64(p))
		} else {
			rb = wb.AddDistinct(key, now, uint64(p))
		}
	}
	t.Logf("right after the scan: a=%v b=%v", ra.Value, rb.Value)
	if !shared {
		if ra.Value >= threshold || rb.Value >= threshold {
			t.Errorf("memory stores: a=%v b=%v, want both below %d", ra.Value, rb.Value, threshold)
		}
		return
	}
	// The scan goes on slowly (a flow a second): after a flush each
	// instance's next flow sees the whole scan.
	for _, side := range []struct {
		name string
		w    storetest.KindWindow
		port uint64
	}{{"a", wa, 0}, {"b", wb, 1}} {
		now := sec(20)
		eventually(t, side.name+" sees the whole scan", func() bool {
			now += int64(time.Millisecond)
			r := side.w.AddDistinct(key, now, side.port) // a port it had seen
			return r.Value >= threshold
		})
		r := side.w.AddDistinct(key, now, side.port)
		if r.Value < ports-4 || r.Value > ports+4 {
			t.Errorf("%s: Value = %v, want %d ± 2%%", side.name, r.Value, ports)
		}
	}
	// One alert between them.
	claim := []byte("vertical-port-scan\x00" + string(key))
	if !a.Claim(claim, sec(21), 5*time.Minute) {
		t.Error("a: first claim refused")
	}
	if b.Claim(claim, sec(22), 5*time.Minute) {
		t.Error("b: claim granted after a's")
	}
}

// Sums and heavy hitters add up across instances too, and the others'
// part of a sum slides with the window.
func TestSharedSumAndTop(t *testing.T) {
	cfg := rediswindow.Config{
		URL:           "redis://" + redistest.StartServer(t).Addr,
		FlushInterval: 20 * time.Millisecond,
		KeyPrefix:     "sumtop:",
	}
	a, b := open(t, cfg), open(t, cfg)

	spec := window.Spec{Name: "exfil", Kind: window.Sum, Size: time.Minute, Buckets: 6}
	wa, wb := openWindow(t, a, spec), openWindow(t, b, spec)
	k := []byte("10.0.0.1")
	wa.Add(k, sec(0), 100)
	wb.Add(k, sec(30), 10)
	now := sec(31)
	eventually(t, "a sees b's bytes", func() bool {
		now += int64(time.Millisecond)
		return wa.Add(k, now, 0).Value == 110
	})
	eventually(t, "b sees a's bytes", func() bool {
		return wb.Add(k, now, 0).Value == 110
	})
	// At 70s a's bucket [0s, 10s) has left the window, on both sides.
	if r := wb.Add(k, sec(70), 0); r.Value != 10 {
		t.Errorf("b at 70s: Value = %v, want 10", r.Value)
	}
	if r := wa.Add(k, sec(70), 0); r.Value != 10 {
		t.Errorf("a at 70s: Value = %v, want 10", r.Value)
	}

	top := window.Spec{Name: "heavy", Kind: window.Top, Size: time.Minute, TopCapacity: 10}
	ta, tb := openWindow(t, a, top), openWindow(t, b, top)
	ta.AddTop([]byte("x"), sec(0), 100)
	ta.AddTop([]byte("y"), sec(0), 150)
	tb.AddTop([]byte("x"), sec(1), 60)
	tb.AddTop([]byte("z"), sec(1), 5)
	now = sec(2)
	var r window.Result
	eventually(t, "a sees x from b", func() bool {
		now += int64(time.Millisecond)
		r = ta.AddTop([]byte("x"), now, 0)
		return r.Value == 160
	})
	if r.Total != 315 {
		t.Errorf("a: Total = %v, want 315", r.Total)
	}
	if got := ta.Rank([]byte("x")); got != 1 {
		t.Errorf("a: Rank(x) = %d, want 1 (160 over y's 150)", got)
	}
	if got := ta.Rank([]byte("y")); got != 2 {
		t.Errorf("a: Rank(y) = %d, want 2", got)
	}
}

// Redis going away does not stop or slow the windows; the outage and the
// deltas given up are counted; flushes resume when it is back.
func TestOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	s := open(t, rediswindow.Config{
		URL:           "redis://" + srv.Addr,
		FlushInterval: 20 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		MaxPending:    5000,
		ClaimTimeout:  50 * time.Millisecond,
		// Long network timeouts: an update that waited on Redis would
		// take one of them, far above any scheduling delay of a busy
		// machine, so the bound below tells waiting from load.
		DialTimeout:  3 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	})
	w := openWindow(t, s, window.Spec{Name: "scan", Kind: window.Distinct, Size: time.Minute})
	now := sec(0)
	add := func(n int) time.Duration {
		var worst time.Duration
		for i := range n {
			now += int64(time.Millisecond)
			start := time.Now()
			w.AddDistinct(fmt.Appendf(nil, "src-%d", i%10000), now, uint64(i))
			worst = max(worst, time.Since(start))
		}
		return worst
	}
	add(1000)
	eventually(t, "first flush", func() bool { return s.Stats().Flushes > 0 })

	srv.Kill()
	deadline := time.Now().Add(time.Second)
	var worst time.Duration
	for time.Now().Before(deadline) {
		worst = max(worst, add(2000))
		time.Sleep(time.Millisecond)
	}
	st := s.Stats()
	t.Logf("while down: %+v, slowest update %v", st, worst)
	if st.Connected || st.Outages != 1 {
		t.Errorf("while down: Connected=%v Outages=%d, want false, 1", st.Connected, st.Outages)
	}
	if st.Dropped == 0 {
		t.Error("while down: nothing dropped past MaxPending")
	}
	if st.Pending > 5000 {
		t.Errorf("while down: Pending = %d, want at most MaxPending", st.Pending)
	}
	if worst > 1500*time.Millisecond {
		t.Errorf("an update took %v while Redis was down: it waited on the network", worst)
	}
	start := time.Now()
	if !s.Claim([]byte("k"), sec(0), time.Minute) || s.Claim([]byte("k"), sec(1), time.Minute) {
		t.Error("local claims while down: wrong answers")
	}
	if d := time.Since(start); d > time.Second { // ClaimTimeout bounds them, not the 3 s dial timeout
		t.Errorf("claims while down took %v", d)
	}

	srv.Start()
	flushes := s.Stats().Flushes
	eventually(t, "reconnection", func() bool {
		add(10)
		st := s.Stats()
		return st.Connected && st.Flushes > flushes+1
	})
	st = s.Stats()
	t.Logf("after restart: %+v", st)
	if st.Outages != 1 {
		t.Errorf("Outages = %d, want 1", st.Outages)
	}
	// What is flushed now reaches Redis: another instance sees it.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	n, err := c.DBSize(context.Background()).Result()
	if err != nil || n == 0 {
		t.Errorf("DBSIZE after restart = %d, %v; want keys", n, err)
	}
}

// A server that lost its scripts (SCRIPT FLUSH, a restart between two
// flushes) gets them again, and no delta is lost.
func TestNoScript(t *testing.T) {
	srv := redistest.StartServer(t)
	s := open(t, rediswindow.Config{URL: "redis://" + srv.Addr, FlushInterval: time.Hour})
	w := openWindow(t, s, window.Spec{Name: "flood", Kind: window.Sum, Size: time.Minute})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	w.Add([]byte("k"), sec(0), 1)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	loads := s.Stats().ScriptLoads
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	w.Add([]byte("k"), sec(1), 1)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.ScriptLoads != loads+1 || st.Lost != 0 || st.FlushErrors != 0 {
		t.Errorf("after SCRIPT FLUSH: %+v, want one more script load, nothing lost", st)
	}
	if s.Claim([]byte("c"), sec(0), time.Minute) != true {
		t.Error("claim after SCRIPT FLUSH refused")
	}
	if st := s.Stats(); st.Claims != 1 {
		t.Errorf("Claims = %d, want 1 decided by Redis", st.Claims)
	}
}

// An unreachable server at start is not an error: the store works
// locally and connects later.
func TestOpenUnreachable(t *testing.T) {
	s := open(t, rediswindow.Config{URL: "redis://127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	w := openWindow(t, s, window.Spec{Name: "r", Kind: window.Sum, Size: time.Minute})
	if r := w.Add([]byte("k"), sec(0), 3); r.Value != 3 {
		t.Errorf("Value = %v, want 3", r.Value)
	}
	if st := s.Stats(); st.Connected || st.Outages != 1 {
		t.Errorf("Stats = %+v, want not connected, 1 outage", st)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  rediswindow.Config
		want []string // substrings of the error; none: valid
	}{
		{"url", rediswindow.Config{URL: "redis://127.0.0.1:6379/2"}, nil},
		{"default port", rediswindow.Config{URL: "rediss://redis.example"}, nil},
		{"cluster url", rediswindow.Config{URL: "redis+cluster://h1:7000,h2:7001,h3:7002"}, nil},
		{"addrs", rediswindow.Config{Addrs: []string{"h1:7000", "h2:7000"}}, nil},
		{"neither", rediswindow.Config{}, []string{"exactly one of url & addrs"}},
		{"both", rediswindow.Config{URL: "redis://h:1", Addrs: []string{"h:2"}}, []string{"exactly one of url & addrs"}},
		{"scheme", rediswindow.Config{URL: "http://h:1"}, []string{`url: scheme "http" is not one of`}},
		{"password", rediswindow.Config{URL: "redis://u:s3cret@h:1"}, []string{"url: a password in the URL is not accepted"}},
		{"hosts", rediswindow.Config{URL: "redis://h1:1,h2:2"}, []string{"url: 2 hosts need the redis+cluster scheme"}},
		{"db", rediswindow.Config{URL: "redis://h:1/x"}, []string{`url: database "x"`}},
		{"cluster db", rediswindow.Config{URL: "redis+cluster://h:1/1"}, []string{"url: a Cluster has no database"}},
		{"bad addr", rediswindow.Config{Addrs: []string{"h"}}, []string{`addrs[0]: address "h": want host:port`}},
		{"many", rediswindow.Config{
			URL: "redis://h:99999", FlushInterval: -1, MaxPending: -1,
			TLS: rediswindow.TLSConfig{CertFile: "c.pem"},
		}, []string{"url: address", "flush_interval: must be >= 0", "max_pending: must be >= 0", "tls: cert_file & key_file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v; want %q in it", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Validate: the error quotes the password: %v", err)
			}
		})
	}
}

// Many groups of a window go to Redis in few script calls (by shard on a
// Cluster); each group still gets its own answer: sums (to rounding) and
// distinct counts over both instances.
func TestSharedManyGroups(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var cfg rediswindow.Config
			if mode == "standalone" {
				cfg.URL = "redis://" + redistest.StartServer(t).Addr
			} else {
				cfg.Addrs = redistest.Addrs(redistest.StartCluster(t, 3))
			}
			cfg.FlushInterval = time.Hour
			cfg.KeyPrefix = fmt.Sprintf("many%d:", prefixes.Add(1))
			a, b := open(t, cfg), open(t, cfg)
			ctx := context.Background()
			flush := func(s *rediswindow.Store) {
				t.Helper()
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			sa := openWindow(t, a, window.Spec{Name: "sum", Kind: window.Sum, Size: time.Minute})
			sb := openWindow(t, b, window.Spec{Name: "sum", Kind: window.Sum, Size: time.Minute})
			da := openWindow(t, a, window.Spec{Name: "dist", Kind: window.Distinct, Size: time.Minute})
			db := openWindow(t, b, window.Spec{Name: "dist", Kind: window.Distinct, Size: time.Minute})
			const groups = 2000
			key := func(i int) []byte { return fmt.Appendf(nil, "10.1.%d.%d", i/256, i%256) }
			for i := range groups {
				k := key(i)
				sa.Add(k, sec(1), float64(i)+0.1)
				sb.Add(k, sec(2), 0.2)
				for j := range i % 7 {
					da.AddDistinct(k, sec(1), uint64(j))
					da.AddDistinct(k, sec(1), uint64(j)) // a repeat, not sent
					db.AddDistinct(k, sec(2), uint64(100+j))
				}
			}
			flush(a)
			flush(b)
			for i := range groups { // a flow more on a, for the flush to bring b's part
				sa.Add(key(i), sec(3), 0)
				da.AddDistinct(key(i), sec(3), 0)
			}
			flush(a)
			for i := range groups {
				k := key(i)
				if r, want := sa.Add(k, sec(3), 0), (float64(i)+0.1)+0.2; math.Abs(r.Value-want) > 1e-9 {
					t.Fatalf("sum %s: Value = %v, want %v", k, r.Value, want)
				}
				want := float64(2 * (i % 7))
				if i%7 == 0 {
					want = 1
				}
				if r := da.AddDistinct(k, sec(3), 0); r.Value != want {
					t.Fatalf("distinct %s: Value = %v, want %v", k, r.Value, want)
				}
			}
			st := a.Stats()
			if st.FlushErrors != 0 || st.Lost != 0 {
				t.Errorf("a: %+v, want no errors", st)
			}
			if want := uint64(2*(2*shardCalls+heartbeatCalls) + heartbeatCalls); st.Commands > want {
				t.Errorf("a: %d commands for 2 flushes of 2 windows, want at most %d", st.Commands, want)
			}
		})
	}
}

// shardCalls bounds the script calls a flush makes per window of up to a
// few thousand groups: one per shard.
const shardCalls = 64

// heartbeatCalls is what a flush, and the connection, send to beat the
// heartbeat and count the instances (windows without a threshold read no
// hot set).
const heartbeatCalls = 4

// A flush that finds Redis away takes nothing: the deltas wait (Pending),
// and reach Redis whole once it is back, none lost, none sent twice.
func TestFailedFlushKeepsDeltas(t *testing.T) {
	srv := redistest.StartServer(t)
	s := open(t, rediswindow.Config{URL: "redis://" + srv.Addr, FlushInterval: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	w := openWindow(t, s, window.Spec{Name: "bytes", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
	srv.Kill() // nothing was added before: what Redis holds after its restart is what follows
	added := 0.0
	for i := range 50 {
		w.Add([]byte("g"), sec(1)+int64(i)*int64(time.Millisecond), 1)
		added++
		time.Sleep(2 * time.Millisecond) // over several flush attempts
	}
	eventually(t, "outage", func() bool { return s.Stats().Outages > 0 })
	if st := s.Stats(); st.Pending != 1 || st.Lost != 0 {
		t.Errorf("while down: %d pending, %d lost; want the group pending, nothing lost", st.Pending, st.Lost)
	}
	srv.Start()
	eventually(t, "reconnection", func() bool { return s.Stats().Connected })
	w.Add([]byte("g"), sec(2), 10)
	added += 10
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	if got := redisSum(t, c, "*|g"); got != added {
		t.Errorf("Redis holds %v of g, want %v: every update once", got, added)
	}
	if st := s.Stats(); st.Lost != 0 || st.Dropped != 0 || st.Pending != 0 {
		t.Errorf("after: %+v, want nothing lost, dropped or pending", st)
	}
}
