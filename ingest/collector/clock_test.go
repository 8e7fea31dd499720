package collector

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/pcap"
)

// captureDatagrams reads the UDP payloads of one of ingest/netflow's
// captures of real softflowd export.
func captureDatagrams(t testing.TB, name string) [][]byte {
	t.Helper()
	path := filepath.Join("..", "netflow", "testdata", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	r, err := pcap.Open(path, pcap.Config{Datagram: func(_ time.Time, _, _ netip.AddrPort, p []byte) bool {
		out = append(out, append([]byte(nil), p...))
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A real softflowd v9 export (headers on its capture's clock, days behind)
// sent over loopback with one datagram forged an hour ahead in the middle:
// every flow, the forged datagram's included, lands on the collector's
// clock, the exporter's measured skew stays the capture's, and one warning
// is raised for the exporter, not one per datagram.
func TestListenerForgedClock(t *testing.T) {
	dgs := captureDatagrams(t, "export-v9.pcap")
	forged := len(dgs) / 2
	binary.BigEndian.PutUint32(dgs[forged][8:], binary.BigEndian.Uint32(dgs[forged][8:])+3600)

	var mu sync.Mutex
	var warnings []netflow.ClockSkewEvent
	dec := netflow.NewDecoder(netflow.Config{ClockCorrection: true, OnClockSkew: func(e netflow.ClockSkewEvent) {
		mu.Lock()
		warnings = append(warnings, e)
		mu.Unlock()
	}})
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{NetFlow: dec})
	if err != nil {
		t.Fatal(err)
	}
	var flows []flow.Flow
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- l.Run(ctx, func(b []flow.Flow) { mu.Lock(); flows = append(flows, b...); mu.Unlock() })
	}()
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	for _, d := range dgs {
		c.Write(d)
	}
	c.Close()
	waitDatagrams(l, len(dgs))
	cancel()
	<-done
	received := time.Now()
	mu.Lock()
	defer mu.Unlock()
	if len(flows) != 466 {
		t.Fatalf("%d flows, want the capture's 466", len(flows))
	}
	// softflowd's flows end within the capture's span before their
	// datagram's header; the capture is shorter than a minute.
	for _, f := range flows {
		if at := f.EventTime(); at.Before(sent.Add(-time.Minute)) || at.After(received.Add(netflow.ClockDeadBand)) {
			t.Fatalf("flow at %v, sent %v, all received by %v", at, sent, received)
		}
	}
	skew := dec.Stats().Exporters[0].ClockSkew
	if skew > -24*time.Hour {
		t.Errorf("skew %v: the capture's clock is days behind", skew)
	}
	if len(warnings) != 1 || !warnings[0].Over || (warnings[0].Skew-skew).Abs() > time.Minute {
		t.Errorf("warnings %+v, want one for the exporter's skew %v", warnings, skew)
	}
}

// A storm of spoofed exporters (one datagram each, from 127.3.0.x), all
// with clocks days off: the warnings given are bounded (10 a minute per
// decoder), the rest counted; every exporter's skew is still measured.
func TestListenerSkewStormBounded(t *testing.T) {
	dgs := captureDatagrams(t, "export-v5.pcap")
	const storm = 50
	var mu sync.Mutex
	warnings := 0
	dec := netflow.NewDecoder(netflow.Config{ClockCorrection: true, OnClockSkew: func(netflow.ClockSkewEvent) {
		mu.Lock()
		warnings++
		mu.Unlock()
	}})
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{NetFlow: dec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx, func([]flow.Flow) {}) }()
	for i := range storm {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 3, 0, byte(i+1))})
		if err != nil {
			t.Fatal(err)
		}
		c.WriteToUDP(dgs[0], l.Addr().(*net.UDPAddr))
		c.Close()
	}
	for i := 0; i < 500 && l.Stats().Datagrams < storm; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	st := dec.Stats()
	skewed := 0
	for _, e := range st.Exporters {
		if e.ClockSkew < -24*time.Hour {
			skewed++
		}
	}
	if skewed != storm {
		t.Errorf("%d of %d exporters measured days off", skewed, storm)
	}
	if warnings != 10 || dec.ClockWarningsSuppressed() != storm-10 {
		t.Errorf("%d warnings given, %d suppressed; want 10 and %d", warnings, dec.ClockWarningsSuppressed(), storm-10)
	}
}
