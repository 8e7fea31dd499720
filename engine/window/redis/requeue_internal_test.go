package rediswindow

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
)

// The calls of a flush that lost Redis before sending them go back to the
// pending batch, merged with the updates made meanwhile, of every kind,
// and the next flush sends them once.
func TestRequeueUnsent(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := Open(context.Background(), Config{URL: "redis://" + srv.Addr, FlushInterval: time.Hour, KeyPrefix: "rq:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open := func(name string, kind window.Kind) *sharedWindow {
		if _, err := s.Window(window.Spec{Name: name, Kind: kind, Size: time.Minute}); err != nil {
			t.Fatal(err)
		}
		return s.windows[name]
	}
	sum, dist, top := open("s", window.Sum), open("d", window.Distinct), open("t", window.Top)
	at := int64(1_699_999_981) * int64(time.Second)
	feed := func(from int) {
		for i := range 100 {
			key := []byte("g" + strconv.Itoa(i%7))
			sum.ofKind().(window.SumWindow).Add(key, at, 1)
			dist.ofKind().(window.DistinctWindow).AddDistinct(key, at, uint64(from+i))
			top.ofKind().(window.TopWindow).AddTop(key, at, 1)
		}
	}
	feed(0)
	// A flush's first half: take and build, then Redis is lost before
	// any call goes.
	replies, cmds := s.takeAll([]*sharedWindow{sum, dist, top})
	feed(1000)                    // the engine goes on meanwhile
	s.requeue(cmds[:2], cmds[2:]) // the failed pipeline's calls were not written either
	for _, r := range replies {
		r.w.giveBack(r.b)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Lost != 0 || st.Dropped != 0 || st.Pending != 0 || st.Requeued != 3 {
		t.Errorf("%+v, want 3 requeues, nothing lost, dropped or pending", st)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	keys, _ := c.Keys(ctx, "{rq:s*").Result()
	total := 0.0
	for _, k := range keys {
		for f, v := range c.HGetAll(ctx, k).Val() {
			if strings.HasSuffix(f, ":a") {
				x, _ := strconv.ParseFloat(v, 64)
				total += x
			}
		}
	}
	if total != 200 {
		t.Errorf("Sum: Redis holds %v, want 200", total)
	}
	hlls, _ := c.Keys(ctx, "{rq:d*|g*:*:*").Result()
	if n := c.PFCount(ctx, hlls...).Val(); n < 190 || n > 210 {
		t.Errorf("Distinct: Redis counts %d items (%d keys), want about 200", n, len(hlls))
	}
	topKeys, _ := c.Keys(ctx, "{rq:t*}:*:total").Result()
	total = 0
	for _, k := range topKeys {
		x, _ := strconv.ParseFloat(c.HGet(ctx, k, "a").Val(), 64)
		total += x
	}
	if total != 200 {
		t.Errorf("Top: Redis totals %v, want 200", total)
	}
}
