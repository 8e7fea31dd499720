package rediswindow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
