package rediswindow_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
)

// The collector registers cleanly and shows the commands, bytes, updates
// and held updates of a store whose window holds a group far below its
// threshold and ships one past it.
func TestCollector(t *testing.T) {
	s := open(t, rediswindow.Config{URL: "redis://" + redistest.StartServer(t).Addr, FlushInterval: time.Hour})
	w := openWindow(t, s, window.Spec{Name: "bytes", Kind: window.Sum, Size: time.Minute}).Window.(window.SumWindow)
	w.(window.Thresholder).SetThreshold(100, 0)
	for i := range 10 {
		w.Add([]byte("small"), t0+int64(i), 1)
		w.Add([]byte("big"), t0+int64(i), 50)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			got[mf.GetName()] = c.GetValue()
		} else {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"flowguard_redis_updates_total":     20,
		"flowguard_redis_held_total":        11, // small's 10 and big's first
		"flowguard_redis_ship_starts_total": 1,
		"flowguard_redis_instances":         1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["flowguard_redis_commands_total"] == 0 || got["flowguard_redis_bytes_total"] == 0 {
		t.Errorf("commands %v, bytes %v: want both counted", got["flowguard_redis_commands_total"], got["flowguard_redis_bytes_total"])
	}
}
