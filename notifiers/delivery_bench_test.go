package notifiers

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
)

// scanAlert is a port-scan alert as the engine raises it: group,
// enrichment and five sample flows (about 2 KB of JSON).
func scanAlert() *alert.Alert {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	a := &alert.Alert{
		ID: "9c1f0a7e5b3d2c10", Rule: "vertical-port-scan", Name: "Vertical port scan", Severity: "high",
		Tags:  []string{"T1046", "scan"},
		Group: map[string]any{"src_addr": "198.51.100.23", "dst_addr": "10.20.30.40"},
		Value: 1543, Threshold: 100, Window: "1m0s", FirstSeen: t0, LastSeen: t0.Add(50 * time.Second), FiredAt: t0.Add(50 * time.Second),
		Message:    "198.51.100.23 probed 1543 ports on 10.20.30.40 in one minute",
		Enrichment: map[string]map[string]any{"src_addr": {"country": "US", "asn": 64500, "as_org": "Example Net"}},
	}
	for i := range 5 {
		f := flow.Flow{SrcAddr: netip.MustParseAddr("198.51.100.23"), DstAddr: netip.MustParseAddr("10.20.30.40"),
			SrcPort: 40000, DstPort: uint16(20 + i), Bytes: 44, Packets: 1}
		f.SetProto(6)
		a.Samples = append(a.Samples, f)
	}
	return a
}

// counting accepts every alert and counts them.
type counting struct{ n atomic.Int64 }

func (c *counting) Name() string { return "count" }
func (c *counting) Close() error { return nil }
func (c *counting) Notify(_ context.Context, as ...*alert.Alert) error {
	c.n.Add(int64(len(as)))
	return nil
}

// BenchmarkSendWriteAhead is Send to a notifier with a spool: the
// caller's cost stays a channel send (the spooler writes the file on its
// own goroutine), and it allocates nothing.
func BenchmarkSendWriteAhead(b *testing.B) {
	d, err := New([]Target{{Notifier: &counting{}, Delivery: Delivery{QueueSize: 1 << 20, SpoolMax: 1 << 30, SpoolMaxBytes: 1 << 40, SpoolDir: b.TempDir()}}}, nil, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	a := scanAlert()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.Send(a)
	}
	b.StopTimer()
	d.Close(context.Background())
}

// BenchmarkDeliver measures an alert from Send to the notifier's
// acceptance, without a spool (memory) and with one (write-ahead: the
// alert is encoded, written to a file and renamed, then the file removed
// after delivery). The difference is the price of surviving a crash.
func BenchmarkDeliver(b *testing.B) {
	for _, spool := range []bool{false, true} {
		name := "memory"
		if spool {
			name = "write-ahead"
		}
		b.Run(name, func(b *testing.B) {
			c := &counting{}
			dl := Delivery{QueueSize: b.N + 1, SpoolMax: b.N + 1, SpoolMaxBytes: 1 << 40}
			if spool {
				dl.SpoolDir = b.TempDir()
			}
			d, err := New([]Target{{Notifier: c, Delivery: dl}}, nil, Deps{})
			if err != nil {
				b.Fatal(err)
			}
			a := scanAlert()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				d.Send(a)
			}
			for c.n.Load() < int64(b.N) {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			if s := d.Stats()[0]; s.Dropped != 0 || s.Sent != uint64(b.N) {
				b.Fatal(fmt.Sprintf("%+v", s))
			}
			d.Close(context.Background())
		})
	}
}
