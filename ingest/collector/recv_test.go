package collector

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/netflow"
)

// recordingDecoder keeps the source and a copy of the payload of every
// datagram it is handed, and decodes none.
type recordingDecoder struct {
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	src netip.AddrPort
	p   []byte
}

func (d *recordingDecoder) Decode(src netip.AddrPort, _ time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	d.mu.Lock()
	d.got = append(d.got, recorded{src, bytes.Clone(p)})
	d.mu.Unlock()
	return out, nil
}

// Every datagram reaches the decoder with its own payload and its
// sender's address and port, an IPv4 sender on a dual-stack socket as an
// IPv4 address: over batches filled to the brim (the datagrams wait in the
// socket before the listener runs), of sizes from 4 bytes to the largest
// a UDP datagram over IPv4 holds.
func TestListenerSources(t *testing.T) {
	for _, c := range []struct{ listen, from string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		{"[::]:0", "127.0.0.1"},
		{"[::]:0", "::1"},
	} {
		t.Run(c.listen+" from "+c.from, func(t *testing.T) {
			dec := &recordingDecoder{}
			l, err := Listen(Config{Address: c.listen, Batch: 16}, Decoders{NetFlow: dec})
			if err != nil {
				t.Skip(err) // no IPv6 here
			}
			to := l.Addr().(*net.UDPAddr).AddrPort()
			to = netip.AddrPortFrom(netip.MustParseAddr(c.from), to.Port())
			conns := make([]*net.UDPConn, 3)
			for i := range conns {
				if conns[i], err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to)); err != nil {
					l.Close()
					t.Skip(err)
				}
				defer conns[i].Close()
			}
			var sent []recorded
			sizes := []int{4, 1500, 9000, 65507}
			for i := range 100 {
				p := make([]byte, sizes[i%len(sizes)])
				p[1] = 9 // NetFlow v9, for the listener's dispatch
				p[2], p[3] = byte(i>>8), byte(i)
				c := conns[i%len(conns)]
				if _, err := c.Write(p); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, recorded{c.LocalAddr().(*net.UDPAddr).AddrPort(), p})
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- l.Run(ctx, func([]flow.Flow) {}) }()
			waitDatagrams(l, len(sent))
			cancel()
			if err := <-done; err != context.Canceled {
				t.Fatalf("Run: %v", err)
			}
			dec.mu.Lock()
			defer dec.mu.Unlock()
			if len(dec.got) != len(sent) {
				t.Fatalf("%d datagrams decoded, %d sent", len(dec.got), len(sent))
			}
			for i, s := range sent {
				g := dec.got[i]
				if g.src != s.src || g.src.Addr().Is4() != (c.from == "127.0.0.1") {
					t.Errorf("datagram %d from %v, want %v", i, g.src, s.src)
				}
				if !bytes.Equal(g.p, s.p) {
					t.Errorf("datagram %d: %d bytes (%x...), sent %d (%x...)", i, len(g.p), g.p[:4], len(s.p), s.p[:4])
				}
			}
		})
	}
}

// BenchmarkListenerLoopback sends the v9 capture's datagrams over loopback
// UDP to a listener decoding them (at most 128 in flight, so that the
// kernel drops none) and reports the CPU of both ends per datagram; the
// allocations are the listener's (the sender allocates nothing).
func BenchmarkListenerLoopback(b *testing.B) {
	dgs := captureDatagrams(b, "export-v9.pcap")
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{NetFlow: netflow.NewDecoder(netflow.Config{})})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx, func([]flow.Flow) {}) }()
	c := dialListener(b, l)
	send := func(n int) {
		base := l.datagrams.Load()
		for i := range n {
			for uint64(i)-(l.datagrams.Load()-base) > 128 {
				runtime.Gosched()
			}
			if _, err := c.Write(dgs[i%len(dgs)]); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; l.datagrams.Load()-base < uint64(n); i++ {
			if i > 5e6 {
				b.Fatal(fmt.Sprintf("%d of %d datagrams read", l.datagrams.Load()-base, n))
			}
			runtime.Gosched()
		}
	}
	send(len(dgs)) // templates
	b.ReportAllocs()
	b.ResetTimer()
	send(b.N)
	b.StopTimer()
	cancel()
	<-done
}

// BenchmarkReadBatch writes batches of 64 datagrams of the v9 capture to a
// loopback UDP socket and reads them back with the listener's batch
// reader, on one goroutine (no scheduling in the figures): per datagram,
// one write and a share of one read.
func BenchmarkReadBatch(b *testing.B) {
	dgs := captureDatagrams(b, "export-v9.pcap")
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rd, err := newDatagramReader(l.conn, DefaultBatch, rxTimeOOB)
	if err != nil {
		b.Fatal(err)
	}
	c := dialListener(b, l)
	bytes := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(DefaultBatch, b.N-i)
		for j := range n {
			if _, err := c.Write(dgs[(i+j)%len(dgs)]); err != nil {
				b.Fatal(err)
			}
		}
		for n > 0 {
			got, err := rd.ReadBatch()
			if err != nil {
				b.Fatal(err)
			}
			for _, g := range got {
				if !g.src.IsValid() {
					b.Fatal("no source")
				}
				bytes += len(g.p)
			}
			n -= len(got)
			i += len(got)
		}
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
}

// dialListener connects a UDP socket to l, closed at the end of the test.
func dialListener(tb testing.TB, l *Listener) *net.UDPConn {
	tb.Helper()
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
