package collector

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
)

// exportDatagrams reads the UDP payloads of a committed capture of real
// softflowd NetFlow v5 export.
func exportDatagrams(t *testing.T) [][]byte {
	t.Helper()
	return captureDatagrams(t, "export-v5.pcap")
}

// A listener on a real socket decodes datagrams of every family, counts
// what it cannot decode, and drops what comes from exporters it does not
// allow.
func TestListener(t *testing.T) {
	dgs := exportDatagrams(t)
	if len(dgs) == 0 {
		t.Fatal("no datagrams in the capture")
	}
	run := func(t *testing.T, allow []string, sent int, send func(c *net.UDPConn)) (Stats, int) {
		l, err := Listen(Config{Address: "127.0.0.1:0", Allow: allow},
			Decoders{NetFlow: netflow.NewDecoder(netflow.Config{}), SFlow: sflow.NewDecoder(sflow.Config{})})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		flows := 0
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			done <- l.Run(ctx, func(b []flow.Flow) { mu.Lock(); flows += len(b); mu.Unlock() })
		}()
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, l.Addr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		send(c)
		c.Close()
		// Loopback does not lose datagrams: wait until all have been read.
		for i := 0; i < 500 && l.Stats().Datagrams < uint64(sent); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		return l.Stats(), flows
	}

	t.Run("decodes", func(t *testing.T) {
		st, flows := run(t, nil, len(dgs)+2, func(c *net.UDPConn) {
			for _, d := range dgs {
				c.Write(d)
			}
			c.Write([]byte{0, 5, 0, 1, 2, 3})          // v5 header cut short: malformed
			c.Write([]byte{0x47, 0x45, 0x54, 0x20, 1}) // "GET ": no export version
		})
		if st.Datagrams != uint64(len(dgs))+2 || st.Malformed != 1 || st.Unsupported != 1 {
			t.Errorf("stats %+v", st)
		}
		// softflowd exported the 438 flows of the capture (see
		// ingest/netflow/testdata/README.md).
		if flows != 438 || st.Flows != 438 {
			t.Errorf("%d flows handed on (stats %d), want 438", flows, st.Flows)
		}
	})
	t.Run("allowlist", func(t *testing.T) {
		st, flows := run(t, []string{"192.0.2.0/24"}, len(dgs), func(c *net.UDPConn) {
			for _, d := range dgs {
				c.Write(d)
			}
		})
		if st.Denied != uint64(len(dgs)) || flows != 0 {
			t.Errorf("denied %d of %d, %d flows through", st.Denied, len(dgs), flows)
		}
	})
}

func TestFamily(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want int
	}{
		{[]byte{0, 9, 0, 1}, FamilyNetFlow},
		{[]byte{0, 10, 0, 1}, FamilyNetFlow},
		{[]byte{0, 0, 0, 5}, FamilySFlow},
		{[]byte{0, 0, 0, 4}, FamilyUnknown},
		{[]byte{0, 5}, FamilyUnknown},
	} {
		if got := Family(c.p); got != c.want {
			t.Errorf("Family(%v) = %d, want %d", c.p, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Address: "nope", Allow: []string{"10.0.0.0/8", "banana"}, Batch: 5000}.Validate()
	if err == nil {
		t.Fatal("a bad config passed")
	}
	for _, want := range []string{"address", "allow[1]", "batch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// Each datagram is received at the kernel's arrival time, not at the time
// a batch is read: datagrams waiting in the socket before Run starts keep
// the times they arrived at, one per datagram (as a packet capture on the
// host records them).
func TestListenerArrivalTimes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("kernel arrival stamps are read on Linux")
	}
	dgs := exportDatagrams(t)
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{NetFlow: netflow.NewDecoder(netflow.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The kernel turns its receive stamping on in deferred work after the
	// first socket asks for it; a datagram arriving before that is stamped
	// when read.
	time.Sleep(100 * time.Millisecond)
	sent := make([]time.Time, len(dgs)+1)
	for i, d := range dgs {
		sent[i] = time.Now()
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	sent[len(dgs)] = time.Now()
	time.Sleep(20 * time.Millisecond)
	started := time.Now()

	var mu sync.Mutex
	got := map[uint32]map[time.Time]bool{} // sequence number (one per datagram) → receive times
	flows := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- l.Run(ctx, func(b []flow.Flow) {
			mu.Lock()
			defer mu.Unlock()
			for _, f := range b {
				if got[f.SequenceNum] == nil {
					got[f.SequenceNum] = map[time.Time]bool{}
				}
				got[f.SequenceNum][f.TimeReceived] = true
				flows++
			}
		})
	}()
	waitDatagrams(l, len(dgs))
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if flows != 438 {
		t.Fatalf("%d flows, want 438", flows)
	}
	for i, d := range dgs {
		seq := uint32(d[16])<<24 | uint32(d[17])<<16 | uint32(d[18])<<8 | uint32(d[19])
		if len(got[seq]) != 1 {
			t.Fatalf("datagram %d: %d receive times", i, len(got[seq]))
		}
		for at := range got[seq] {
			if at.Before(sent[i]) || at.After(sent[i+1]) || !at.Before(started) {
				t.Errorf("datagram %d sent in [%v, %v] (Run started %v) received at %v",
					i, sent[i].Format(time.StampNano), sent[i+1].Format(time.StampNano), started.Format(time.StampNano), at.Format(time.StampNano))
			}
		}
	}
}

// lendingSink lends buffers of a small capacity and records what it is
// handed.
type lendingSink struct {
	mu                       sync.Mutex
	size                     int // capacity of the buffers lent
	lent, returned           map[*[]flow.Flow]bool
	flows, batches, outgrown int
}

func (s *lendingSink) Buffer() *[]flow.Flow {
	b := make([]flow.Flow, 0, s.size)
	s.mu.Lock()
	s.lent[&b] = true
	s.mu.Unlock()
	return &b
}

func (s *lendingSink) Hand(b *[]flow.Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lent[b] || s.returned[b] {
		panic("handed a buffer not lent, or twice")
	}
	s.returned[b] = true
	if cap(*b) != s.size {
		s.outgrown++
	}
	s.flows += len(*b)
	s.batches++
}

// RunSink decodes into the buffers the sink lends and hands each back
// once, before its room runs short: every flow arrives. Datagrams larger
// than a lent buffer (30 flows each into buffers of 16) are decoded into
// the listener's own buffer and copied: no buffer is handed outgrown.
func TestListenerRunSink(t *testing.T) {
	for _, size := range []int{80, 16} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testRunSink(t, size) })
	}
}

func testRunSink(t *testing.T, size int) {
	dgs := exportDatagrams(t)
	l, err := Listen(Config{Address: "127.0.0.1:0"}, Decoders{NetFlow: netflow.NewDecoder(netflow.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	s := &lendingSink{size: size, lent: map[*[]flow.Flow]bool{}, returned: map[*[]flow.Flow]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.RunSink(ctx, s) }()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dgs {
		c.Write(d)
	}
	c.Close()
	waitDatagrams(l, len(dgs))
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("RunSink: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flows != 438 || l.Stats().Flows != 438 {
		t.Errorf("%d flows handed on (stats %d), want 438", s.flows, l.Stats().Flows)
	}
	if s.batches < 438/size || s.outgrown != 0 {
		t.Errorf("%d batches, %d outgrown: the buffers' room was not respected", s.batches, s.outgrown)
	}
}

// waitDatagrams waits, 5 s at most, until l has read n datagrams.
func waitDatagrams(l *Listener, n int) {
	for i := 0; i < 500 && l.Stats().Datagrams < uint64(n); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}
