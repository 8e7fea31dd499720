package rediswindow_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/engine/window/redis/internal/redistest"
	"github.com/flowguard/flowguard/engine/window/storetest"
)

// exchanger returns w's Exchanger, failing the test without one.
func exchanger(t *testing.T, w window.Window) window.Exchanger {
	t.Helper()
	if k, ok := w.(storetest.KindWindow); ok {
		w = k.Window
	}
	x, ok := w.(window.Exchanger)
	if !ok {
		t.Fatalf("%T is not a window.Exchanger", w)
	}
	return x
}

// A scan of 3000 ports split between two instances in a burst of 30 ms,
// then nothing: each half (1500) is under the threshold, and no later
// local update compares the combined value. Within about two flush
// intervals, a pull of changed keys on one of the instances reports the
// group with the combined value; a Sum window the same.
func TestExchangeReportsBurstWithoutFurtherFlows(t *testing.T) {
	const (
		ports     = 3000
		threshold = 2000
		interval  = 200 * time.Millisecond
	)
	srv := redistest.StartServer(t)
	for _, kind := range []window.Kind{window.Distinct, window.Sum} {
		t.Run(kind.String(), func(t *testing.T) {
			cfg := rediswindow.Config{URL: "redis://" + srv.Addr + "/0", FlushInterval: interval,
				KeyPrefix: fmt.Sprintf("burst%d:", prefixes.Add(1))}
			a, b := open(t, cfg), open(t, cfg)
			spec := window.Spec{Name: "vertical-port-scan", Kind: kind, Size: time.Minute}
			wa, wb := openWindow(t, a, spec), openWindow(t, b, spec)
			xa, xb := exchanger(t, wa), exchanger(t, wb)
			xa.Changed(nil) // as the engine does: start keeping changed keys
			xb.Changed(nil)
			key := []byte("198.51.100.23|10.20.30.40")
			var ra, rb window.Result
			start := time.Now()
			for p := range ports {
				now := sec(30 * float64(p) / ports / 1000) // 30 ms of event time
				w, r := wa, &ra
				if p%2 == 1 {
					w, r = wb, &rb
				}
				if kind == window.Distinct {
					*r = w.AddDistinct(key, now, uint64(p))
				} else {
					*r = w.Add(key, now, 1)
				}
			}
			if ra.Value >= threshold || rb.Value >= threshold {
				t.Fatalf("right after the burst: a=%v b=%v, want both under %d (no flush yet)", ra.Value, rb.Value, threshold)
			}
			var got window.Change
			var changes []window.Change
			eventually(t, "combined value in a pull of changed keys", func() bool {
				for _, x := range []window.Exchanger{xa, xb} {
					changes = x.Changed(changes[:0])
					for _, c := range changes {
						if c.Key != string(key) {
							t.Errorf("changed key %q, want %q", c.Key, key)
						}
						if c.Result.Value > got.Result.Value {
							got = c
						}
					}
				}
				return got.Result.Value >= threshold
			})
			took := time.Since(start)
			t.Logf("combined value %v reported %v after the burst began (flush interval %v)", got.Result.Value, took, interval)
			// Past DistinctExact items, a HyperLogLog estimate.
			if v := got.Result.Value; math.Abs(v-ports) > 0.03*ports || (kind == window.Sum && v != ports) {
				t.Errorf("combined value %v, want %d", v, ports)
			}
			if f := got.Result.First; f < sec(0) || f > sec(0.03) {
				t.Errorf("first %v, want within the burst [%v, %v]", f, sec(0), sec(0.03))
			}
			if took > 3*interval {
				t.Errorf("reported after %v, want within about two flush intervals of %v", took, interval)
			}
			// Reported once: a second pull, with nothing new, is empty.
			if changes = xa.Changed(changes[:0]); len(changes) != 0 {
				t.Errorf("second pull on a: %v, want nothing", changes)
			}
		})
	}
}

// A flush whose answers raise more groups than ExchangeMaxKeys hands over
// at most that many and counts the rest.
func TestExchangeBound(t *testing.T) {
	const (
		groups = 20
		bound  = 8
	)
	srv := redistest.StartServer(t)
	cfg := rediswindow.Config{URL: "redis://" + srv.Addr + "/0", FlushInterval: time.Hour, ExchangeMaxKeys: bound,
		KeyPrefix: fmt.Sprintf("bound%d:", prefixes.Add(1))}
	a, b := open(t, cfg), open(t, cfg)
	spec := window.Spec{Name: "flows", Kind: window.Sum, Size: time.Minute}
	wa, wb := openWindow(t, a, spec), openWindow(t, b, spec)
	xa := exchanger(t, wa)
	xa.Changed(nil)
	ctx := context.Background()
	key := func(i int) []byte { return fmt.Appendf(nil, "group-%02d", i) }
	for i := range groups {
		wb.Add(key(i), sec(1), 5)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range groups {
		wa.Add(key(i), sec(2), 1) // carried by a's flush, which brings b's 5 back
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	changes := xa.Changed(nil)
	if len(changes) != bound {
		t.Errorf("%d changed keys handed over, want the bound %d", len(changes), bound)
	}
	for _, c := range changes {
		if c.Result.Value != 6 {
			t.Errorf("%s: combined value %v, want 6", c.Key, c.Result.Value)
		}
	}
	if d := a.Stats().ExchangeDropped; d != groups-bound {
		t.Errorf("ExchangeDropped %d, want %d", d, groups-bound)
	}
}
