package collector

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/ingest/admit"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
)

// hostileListener runs a listener on a loopback port with the given NetFlow
// decoder; the handler counts flows per exporter and keeps none.
type hostileListener struct {
	l       *Listener
	nf      *netflow.Decoder
	mu      sync.Mutex
	flows   map[netip.Addr]int
	stopped chan error
	cancel  context.CancelFunc
}

func startHostileListener(t *testing.T, cfg netflow.Config) *hostileListener {
	t.Helper()
	h := &hostileListener{nf: netflow.NewDecoder(cfg), flows: map[netip.Addr]int{}, stopped: make(chan error, 1)}
	l, err := Listen(Config{Address: "127.0.0.1:0", ReadBuffer: 32 << 20}, Decoders{NetFlow: h.nf, SFlow: sflow.NewDecoder(sflow.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	h.l = l
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.stopped <- l.Run(ctx, func(b []flow.Flow) {
			h.mu.Lock()
			for i := range b {
				h.flows[b[i].SamplerAddress]++
			}
			h.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-h.stopped })
	return h
}

// waitRead waits (at most 5 s) until the listener has read n datagrams.
func (h *hostileListener) waitRead(t *testing.T, n uint64) {
	t.Helper()
	for i := 0; i < 500 && h.l.Stats().Datagrams < n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.l.Stats().Datagrams; got < n {
		t.Fatalf("the listener read %d datagrams of %d sent", got, n)
	}
}

func (h *hostileListener) flowsOf(a netip.Addr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.flows[a]
}

// heapPeak samples the heap in use every 5 ms until stop is called, and
// returns the largest figure seen.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(quit); <-done; return peak }
}

func heapInuse() uint64 {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// The record-amplification probe over loopback: 600 datagrams of 65 KB
// (39 MB) of a v9 template with one 4-byte field and a data set filling
// the datagram (16,368 records each). Each gives at most
// MaxFlowsPerDatagram flows, the rest is counted, and the heap stays
// under 32 MB above where it started (uncapped, each datagram alone
// made a 10 MB batch); the heap is back within 8 MB once it is over.
func TestRecordAmplificationBounded(t *testing.T) {
	h := startHostileListener(t, netflow.Config{})
	base := heapInuse()
	peak := heapPeak()
	c, err := net.DialUDP("udp", nil, h.l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const datagrams, burst = 600, 20
	sent := 0
	for sent < datagrams {
		for range burst {
			sent++
			if _, err := c.Write(gen.V9RecordBomb(4, 0, uint32(sent))); err != nil {
				t.Fatal(err)
			}
		}
		h.waitRead(t, uint64(sent))
	}
	// A datagram is counted as read before it is decoded and handed on:
	// wait (boundedly) for the last one to go through.
	want := datagrams * netflow.DefaultMaxFlowsPerDatagram
	for i := 0; i < 500 && (h.nf.Rejections().DatagramsOverCap < datagrams || h.flowsOf(netip.MustParseAddr("127.0.0.1")) < want); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	p := peak()
	grown := p - min(base, p)
	r := h.nf.Rejections()
	st := h.l.Stats()
	flows := h.flowsOf(netip.MustParseAddr("127.0.0.1"))
	t.Logf("%d datagrams read, %d flows handed on, %d over the cap; heap grew %d MB", st.Datagrams, flows, r.FlowsOverCap, grown>>20)
	if r.DatagramsOverCap != datagrams || st.Rejected != datagrams {
		t.Errorf("%d datagrams over the cap (listener: %d rejected), want %d", r.DatagramsOverCap, st.Rejected, datagrams)
	}
	if flows != want {
		t.Errorf("%d flows handed on, want %d (the cap per datagram)", flows, want)
	}
	if grown > 32<<20 {
		t.Errorf("heap grew %d MB under the attack, bound 32 MB", grown>>20)
	}
	if after := heapInuse(); after > base+8<<20 {
		t.Errorf("heap %d MB after the attack, %d MB before", after>>20, base>>20)
	}
}

// The template-memory probe over loopback: 1,000 templates of 16,369
// fields (65 MB) are refused by the field cap; 4,000 templates of 128
// fields are held up to the exporter's byte budget (1 MiB), the rest
// refused. Both refusals are counted, and the heap returns once the
// templates expire.
func TestTemplateMemoryBounded(t *testing.T) {
	h := startHostileListener(t, netflow.Config{TemplateTTL: time.Second})
	base := heapInuse()
	peak := heapPeak()
	c, err := net.DialUDP("udp", nil, h.l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := uint64(0)
	for i := range 1000 {
		dg, _ := gen.V9TemplateBomb(256+uint16(i), 16369, uint32(i), 0)
		c.Write(dg)
		sent++
		if sent%20 == 0 {
			h.waitRead(t, sent)
		}
	}
	for id := 256; id < 256+4000; {
		dg, n := gen.V9TemplateBomb(uint16(id), 128, uint32(id), 1)
		c.Write(dg)
		sent++
		id += n
	}
	h.waitRead(t, sent)
	p := peak()
	grown := p - min(base, p)
	r := h.nf.Rejections()
	held := h.nf.TemplateBytes()
	t.Logf("refused: %d for fields, %d for the exporter's bytes; %d bytes held; heap grew %d MB", r.TemplateFields, r.TemplateExporterBytes, held, grown>>20)
	if r.TemplateFields != 1000 || r.TemplateExporterBytes == 0 {
		t.Errorf("refusals: %d for fields (want 1000), %d for bytes (want > 0)", r.TemplateFields, r.TemplateExporterBytes)
	}
	if held > netflow.DefaultTemplateBytesPerExporter {
		t.Errorf("%d template bytes held, budget %d", held, netflow.DefaultTemplateBytesPerExporter)
	}
	if grown > 32<<20 {
		t.Errorf("heap grew %d MB under the attack, bound 32 MB", grown>>20)
	}
	// The templates expire (TTL 1 s here); the next sweep gives their
	// memory back.
	time.Sleep(1100 * time.Millisecond)
	c.Write(gen.V9Orphan(1))
	h.waitRead(t, sent+1)
	if b := h.nf.TemplateBytes(); b != 0 {
		t.Errorf("%d template bytes held after expiry", b)
	}
	if after := heapInuse(); after > base+8<<20 {
		t.Errorf("heap %d MB after expiry, %d MB before the attack", after>>20, base>>20)
	}
}

// The exporter-lockout probe over loopback: a genuine exporter
// (127.0.0.1, softflowd's v5 export of a capture) sends half its
// datagrams, then 4,200 spoofed sources (each from its own 127.1.x.y
// address: Linux routes 127.0.0.0/8 to lo) send a v9 data set whose
// template never comes, then the genuine exporter sends the rest and a
// second genuine exporter (127.0.0.2) starts. Every flow of both arrives:
// the spoofed sources, on probation, evict one another, never the
// established exporter, and are admitted at the configured rate.
func TestSpoofedSourceStorm(t *testing.T) {
	dgs := exportDatagrams(t)
	h := startHostileListener(t, netflow.Config{MaxExporters: 256, Admission: admit.Config{Rate: 1000, Burst: 200}})
	dst := h.l.Addr().(*net.UDPAddr)
	sendFrom := func(ip net.IP, payloads ...[]byte) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, p := range payloads {
			if _, err := c.WriteToUDP(p, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	genuine, second := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)
	half := len(dgs) / 2
	sendFrom(genuine, dgs[:half]...)
	sent := uint64(half)
	h.waitRead(t, sent)

	const storm = 4200
	for i := range storm {
		sendFrom(net.IPv4(127, 1, byte(i>>8), byte(i)), gen.V9Orphan(uint32(i)))
		sent++
		if sent%200 == 0 {
			h.waitRead(t, sent)
		}
	}
	h.waitRead(t, sent)
	r := h.nf.Rejections()
	t.Logf("storm: %d refused for the rate, %d table full, %d evicted; %d exporters held", r.Rate, r.TableFull, r.Evicted, h.nf.Stats().ExporterCount)
	if r.Rate == 0 || r.Evicted == 0 || r.TableFull != 0 {
		t.Errorf("storm rejections %+v: want some refused for the rate, some evicted, none for a full table", r)
	}
	if n := h.nf.Stats().ExporterCount; n > 256 {
		t.Errorf("%d exporters held, bound 256", n)
	}
	// The storm spent the admission budget; a token is back 1 ms later.
	time.Sleep(5 * time.Millisecond)
	sendFrom(genuine, dgs[half:]...)
	sendFrom(second, dgs...)
	sent += uint64(len(dgs) - half + len(dgs))
	h.waitRead(t, sent)
	// softflowd exported the 438 flows of the capture (see
	// ingest/netflow/testdata/README.md).
	for _, a := range []string{"127.0.0.1", "127.0.0.2"} {
		if got := h.flowsOf(netip.MustParseAddr(a)); got != 438 {
			t.Errorf("exporter %s: %d flows arrived, want all 438", a, got)
		}
	}
}
