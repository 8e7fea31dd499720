package rediswindow_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
)

// The scheme step by step, on a standalone server and a Cluster, threshold
// 100: a alone holds 60 of group "g" (its share is 100); b joins, and a's
// next flush, finding two instances, ships g (60 >= 50) and names it. b
// holds 45 of g (under 50), reads the name at its flush, ships its part
// and gets a's back: Changed hands g over at 105. Group "h", 5 on each,
// never leaves either instance.
func TestShipOnShareAndHotSet(t *testing.T) {
	for _, mode := range []string{"standalone", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			url := "redis://" + redistest.StartServer(t).Addr
			if mode == "cluster" {
				url = "redis+cluster://" + strings.Join(redistest.Addrs(redistest.StartCluster(t, 3)), ",")
			}
			cfg := rediswindow.Config{URL: url, FlushInterval: time.Hour, KeyPrefix: fmt.Sprintf("ship%d:", prefixes.Add(1))}
			ctx := context.Background()
			flush := func(s *rediswindow.Store) {
				t.Helper()
				if err := s.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			sumOf := func(s *rediswindow.Store) window.SumWindow {
				w := openWindow(t, s, window.Spec{Name: "bytes", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
				w.(window.Thresholder).SetThreshold(100, 0)
				return w
			}
			a := open(t, cfg)
			wa := sumOf(a)
			wa.(window.Exchanger).Changed(nil)
			wa.Add([]byte("g"), sec(1), 60)
			wa.Add([]byte("h"), sec(1), 5)
			flush(a)
			if st := a.Stats(); st.Instances != 1 || st.ShipStarts != 0 || st.Held != 2 {
				t.Fatalf("a alone: %+v, want 1 instance, nothing shipped, 2 updates held", st)
			}

			b := open(t, cfg)
			wb := sumOf(b)
			wb.(window.Exchanger).Changed(nil)
			wb.Add([]byte("g"), sec(2), 45)
			wb.Add([]byte("h"), sec(2), 5)
			flush(a)
			if st := a.Stats(); st.Instances != 2 || st.Rescans != 1 || st.ShipStarts != 1 {
				t.Fatalf("a after b joined: %+v, want 2 instances, a rescan shipping g", st)
			}
			flush(b)
			if st := b.Stats(); st.HotRead == 0 || st.ShipStarts != 1 || st.Held != 2 {
				t.Fatalf("b: %+v, want g read from the hot set and shipped, both updates held", st)
			}
			got := wb.(window.Exchanger).Changed(nil)
			if len(got) != 1 || got[0].Key != "g" || got[0].Result.Value != 105 {
				t.Fatalf("b's Changed = %+v, want g at 105", got)
			}
			if r := wb.Add([]byte("h"), sec(3), 0); r.Value != 5 {
				t.Errorf("h on b = %v, want its own 5: nothing of h was shared", r.Value)
			}
		})
	}
}

// Two stores whose flushers run every 2 ms while their windows (one of
// each kind, thresholds set) take updates: the flusher reads the local
// windows for announced groups while the engine goroutine writes them
// (go test -race). At the end each hot group's value on a counts b's part.
func TestShipWhileFlushing(t *testing.T) {
	srv := redistest.StartServer(t)
	cfg := rediswindow.Config{URL: "redis://" + srv.Addr, FlushInterval: 2 * time.Millisecond,
		KeyPrefix: fmt.Sprintf("busy%d:", prefixes.Add(1))}
	a, b := open(t, cfg), open(t, cfg)
	type kinds struct {
		sum  window.SumWindow
		dist window.DistinctWindow
		top  window.TopWindow
	}
	windows := func(s *rediswindow.Store) kinds {
		var k kinds
		k.sum = openWindow(t, s, window.Spec{Name: "s", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
		k.dist = openWindow(t, s, window.Spec{Name: "d", Kind: window.Distinct, Size: time.Minute}).Window.(window.DistinctWindow)
		k.top = openWindow(t, s, window.Spec{Name: "t", Kind: window.Top, Size: time.Minute}).Window.(window.TopWindow)
		for _, w := range []any{k.sum, k.dist, k.top} {
			w.(window.Thresholder).SetThreshold(100, 0)
		}
		return k
	}
	wa, wb := windows(a), windows(b)
	feed := func(k kinds, from int) {
		for i := range 20000 {
			key := fmt.Appendf(nil, "k%d", i%500)
			if i%4 == 0 {
				key = []byte("hot")
			}
			at := sec(1) + int64(i)*int64(time.Microsecond)
			k.sum.Add(key, at, 1)
			k.dist.AddDistinct(key, at, uint64(from+i))
			k.top.AddTop(key, at, 1)
		}
	}
	done := make(chan struct{})
	go func() { feed(wb, 1<<20); close(done) }()
	feed(wa, 0)
	<-done
	// Both engines stopped. A flush waits for the flusher's (they take
	// turns), so after one on each store every delta recorded is in Redis,
	// unless one was lost: Redis must hold exactly both parts.
	ctx := context.Background()
	for _, s := range []*rediswindow.Store{a, b} {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range map[string]*rediswindow.Store{"a": a, "b": b} {
		if st := s.Stats(); st.Lost != 0 || st.Dropped != 0 || st.Pending != 0 {
			t.Errorf("%s: %d deltas lost, %d dropped, %d pending, want none", name, st.Lost, st.Dropped, st.Pending)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	if got := redisSum(t, c, cfg.KeyPrefix+"s:*|hot"); got != 10000 {
		t.Errorf("Redis holds %v of hot in window s, want 10000 (5000 from each)", got)
	}
	if got := redisTop(t, c, "{"+cfg.KeyPrefix+"t:*", "hot"); got != 10000 {
		t.Errorf("Redis holds %v of hot in window t, want 10000 (5000 from each)", got)
	}
	// A group's others' part comes back with a flush that carries it
	// (README, "Alert latency"): a's next update of hot, then its flush.
	at := sec(1) + 20000*int64(time.Microsecond)
	wa.sum.Add([]byte("hot"), at, 0)
	wa.dist.AddDistinct([]byte("hot"), at, 0)
	wa.top.AddTop([]byte("hot"), at, 0)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := wa.sum.Add([]byte("hot"), at, 0); r.Value != 10000 {
		t.Errorf("sum of hot on a = %v, want 10000 (5000 from each)", r.Value)
	}
	if r := wa.dist.AddDistinct([]byte("hot"), at, 0); r.Value < 9000 || r.Value > 11000 {
		t.Errorf("distinct of hot on a = %v, want about 10000 (5000 items from each)", r.Value)
	}
	if r := wa.top.AddTop([]byte("hot"), at, 0); r.Value < 10000 {
		t.Errorf("top value of hot on a = %v, want at least 10000", r.Value)
	}
}

// redisSum adds the all-instances fields ("S:a") of the Sum hashes that
// match pattern.
func redisSum(t *testing.T, c *redis.Client, pattern string) float64 {
	t.Helper()
	keys, err := c.Keys(context.Background(), "{"+pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, k := range keys {
		fields, err := c.HGetAll(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range fields {
			if strings.HasSuffix(f, ":a") {
				x, _ := strconv.ParseFloat(v, 64)
				total += x
			}
		}
	}
	return total
}

// redisTop adds member's all-instances score over the Top buckets' zsets
// of the window whose keys start with prefix.
func redisTop(t *testing.T, c *redis.Client, prefix, member string) float64 {
	t.Helper()
	keys, err := c.Keys(context.Background(), prefix).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, k := range keys {
		if _, err := strconv.ParseInt(k[strings.LastIndexByte(k, '}')+2:], 10, 64); err != nil {
			continue // not a bucket's zset over every instance: an instance's part, the hot set...
		}
		if v, err := c.ZScore(context.Background(), k, member).Result(); err == nil {
			total += v
		}
	}
	return total
}

// A store forgets the shipping groups that left the window, and only
// those: a group still live goes on sending deltas after two sweeps, a
// group that came back starts again with its whole part.
func TestShippingGroupsSweep(t *testing.T) {
	s := open(t, rediswindow.Config{URL: "redis://" + redistest.StartServer(t).Addr, FlushInterval: time.Hour})
	w := openWindow(t, s, window.Spec{Name: "bytes", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
	w.(window.Thresholder).SetThreshold(10, 0)
	key := func(i int) []byte { return fmt.Appendf(nil, "g%d", i) }
	for i := range 10 {
		at := sec(1)
		if i >= 5 {
			at = sec(50)
		}
		w.Add(key(i), at, 20) // past the share: ships
	}
	if st := s.Stats(); st.ShipStarts != 10 {
		t.Fatalf("%d groups started shipping, want 10", st.ShipStarts)
	}
	w.Expire(sec(100)) // g0..g4 left the window, g5..g9 did not
	w.Expire(sec(101))
	for i := 5; i < 10; i++ {
		w.Add(key(i), sec(101), 1)
	}
	if st := s.Stats(); st.ShipStarts != 10 {
		t.Errorf("%d groups started shipping, want still 10: g5..g9 ship on", st.ShipStarts)
	}
	w.Add(key(0), sec(102), 20)
	if st := s.Stats(); st.ShipStarts != 11 {
		t.Errorf("%d groups started shipping, want 11: g0 starts again", st.ShipStarts)
	}
}

// An instance that stops hands over what another one could need: a, alone
// (share 100), holds 60 of g, and ships it at its Handover (the share with
// one more instance is 50) before it closes; b, opened after, holds 45 of
// g, reads g's name at its flush and gets a's part back: 105.
func TestHandover(t *testing.T) {
	cfg := rediswindow.Config{URL: "redis://" + redistest.StartServer(t).Addr, FlushInterval: time.Hour,
		KeyPrefix: fmt.Sprintf("handover%d:", prefixes.Add(1))}
	ctx := context.Background()
	sumOf := func(s *rediswindow.Store) window.SumWindow {
		w := openWindow(t, s, window.Spec{Name: "bytes", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
		w.(window.Thresholder).SetThreshold(100, 0)
		return w
	}
	a, err := rediswindow.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wa := sumOf(a)
	wa.Add([]byte("g"), sec(1), 60)
	wa.Add([]byte("h"), sec(1), 10) // far below: stays
	if err := a.Handover(ctx); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.ShipStarts != 1 {
		t.Errorf("a handed over %d groups, want 1 (g)", st.ShipStarts)
	}
	a.Close()

	b := open(t, cfg)
	wb := sumOf(b)
	wb.(window.Exchanger).Changed(nil)
	wb.Add([]byte("g"), sec(2), 45)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := wb.(window.Exchanger).Changed(nil)
	if len(got) != 1 || got[0].Key != "g" || got[0].Result.Value != 105 {
		t.Fatalf("b's Changed = %+v, want g at 105", got)
	}
}
