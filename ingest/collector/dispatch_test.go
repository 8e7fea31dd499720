package collector

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/netflow"
)

// Decoders handed by detection (as the daemon's registry of protocols
// does) take the datagrams they claim, and what none claims is counted
// unsupported.
func TestDispatchByDetect(t *testing.T) {
	dgs := exportDatagrams(t)
	nf := netflow.NewDecoder(netflow.Config{})
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{ByDetect: []Detected{
		{Detect: func(p []byte) bool { return Family(p) == FamilyNetFlow }, Decoder: nf},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	src := netip.MustParseAddrPort("127.0.0.1:9995")
	var out []flow.Flow
	for _, p := range dgs {
		out = l.datagram(src, time.Now(), p, out[:0])
	}
	if len(out) == 0 || l.Stats().Unsupported != 0 {
		t.Fatalf("v5 by detection: %d flows from the last datagram, %d unsupported", len(out), l.Stats().Unsupported)
	}
	l.datagram(src, time.Now(), []byte{0, 0, 0, 5, 0, 0, 0, 1}, out[:0]) // sFlow: no decoder claims it
	if u := l.Stats().Unsupported; u != 1 {
		t.Errorf("%d unsupported, want 1", u)
	}
}

// Dispatch by detection costs no allocation per datagram.
func BenchmarkDispatchByDetect(b *testing.B) {
	dgs := captureDatagrams(b, "export-v5.pcap")
	nf := netflow.NewDecoder(netflow.Config{})
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{ByDetect: []Detected{
		{Detect: func(p []byte) bool { return string(p[:min(4, len(p))]) == "TOY1" }, Decoder: nf},
		{Detect: func(p []byte) bool { return Family(p) == FamilyNetFlow }, Decoder: nf},
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	src := netip.MustParseAddrPort("127.0.0.1:9995")
	out := make([]flow.Flow, 0, 64)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		out = l.datagram(src, now, dgs[i%len(dgs)], out[:0])
	}
}
