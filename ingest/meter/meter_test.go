package meter

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

var (
	a1 = netip.MustParseAddr("192.0.2.1")
	a2 = netip.MustParseAddr("198.51.100.2")
	t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

// collector keeps copies of the flows and the batch sizes it was handed.
type collector struct {
	flows   []flow.Flow
	batches []int
}

func (c *collector) handle(b []flow.Flow) {
	c.batches = append(c.batches, len(b))
	c.flows = append(c.flows, b...)
}

func newMeter(t testing.TB, cfg Config) (*Meter, *collector) {
	t.Helper()
	c := &collector{}
	m, err := New(cfg, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

func at(d time.Duration) int64 { return t0.Add(d).UnixNano() }

func tcp(d time.Duration, sport, dport uint16, flags uint8, n uint32) *Packet {
	return &Packet{Time: at(d), Src: a1, Dst: a2, SrcPort: sport, DstPort: dport, Proto: flow.ProtoTCP, TCPFlags: flags, Length: n}
}

func TestIdleTimeout(t *testing.T) {
	m, c := newMeter(t, Config{})
	m.Packet(tcp(0, 1000, 80, flow.TCPAck, 100))
	m.Packet(tcp(10*time.Second, 1000, 80, flow.TCPAck|flow.TCPPsh, 200))
	// 15s idle after the packet at 10s: the flow expires before this packet
	// is counted, which starts a new flow.
	m.Packet(tcp(25*time.Second, 1000, 80, flow.TCPAck, 50))
	if len(c.flows) != 0 {
		t.Fatalf("flows emitted before a full batch or flush: %d", len(c.flows))
	}
	m.Flush()
	if len(c.flows) != 2 {
		t.Fatalf("got %d flows, want 2", len(c.flows))
	}
	f := c.flows[0]
	if f.Packets != 2 || f.Bytes != 300 || f.RawBytes != 300 || f.RawPackets != 2 {
		t.Errorf("first flow volume = %d pkts %d bytes", f.Packets, f.Bytes)
	}
	if !f.TimeFlowStart.Equal(t0) || !f.TimeFlowEnd.Equal(t0.Add(10*time.Second)) || !f.TimeReceived.Equal(t0.Add(25*time.Second)) {
		t.Errorf("first flow times = %v %v %v", f.TimeFlowStart, f.TimeFlowEnd, f.TimeReceived)
	}
	if f.TCPFlags != flow.TCPAck|flow.TCPPsh || !f.ACK || f.SYN || f.ProtoName != "tcp" || f.SamplingRate != 1 || f.Type != flow.TypePcap {
		t.Errorf("first flow = %+v", f)
	}
	if f.SrcAddr != a1 || f.DstAddr != a2 || f.SrcPort != 1000 || f.DstPort != 80 {
		t.Errorf("first flow key = %v:%d > %v:%d", f.SrcAddr, f.SrcPort, f.DstAddr, f.DstPort)
	}
	if g := c.flows[1]; g.Packets != 1 || !g.TimeReceived.Equal(t0.Add(25*time.Second)) {
		t.Errorf("second flow = %d pkts, received %v", g.Packets, g.TimeReceived)
	}
	s := m.Stats()
	if s.ExpiredIdle != 1 || s.ExpiredFlush != 1 || s.Flows != 2 || s.Packets != 3 || s.Active != 0 || s.Created != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestActiveTimeout(t *testing.T) {
	m, c := newMeter(t, Config{ActiveTimeout: time.Minute})
	for d := time.Duration(0); d <= 130*time.Second; d += 5 * time.Second {
		m.Packet(tcp(d, 1000, 80, flow.TCPAck, 10))
	}
	m.Flush()
	want := []struct{ start, end, recv time.Duration }{
		{0, 55 * time.Second, 60 * time.Second},
		{60 * time.Second, 115 * time.Second, 120 * time.Second},
		{120 * time.Second, 130 * time.Second, 130 * time.Second},
	}
	if len(c.flows) != len(want) {
		t.Fatalf("got %d flows, want %d", len(c.flows), len(want))
	}
	for i, w := range want {
		f := c.flows[i]
		if !f.TimeFlowStart.Equal(t0.Add(w.start)) || !f.TimeFlowEnd.Equal(t0.Add(w.end)) || !f.TimeReceived.Equal(t0.Add(w.recv)) {
			t.Errorf("flow %d: %v..%v received %v, want %v..%v received %v", i,
				f.TimeFlowStart.Sub(t0), f.TimeFlowEnd.Sub(t0), f.TimeReceived.Sub(t0), w.start, w.end, w.recv)
		}
	}
	if s := m.Stats(); s.ExpiredActive != 2 || s.ExpiredFlush != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestTCPClose(t *testing.T) {
	m, c := newMeter(t, Config{})
	ms := time.Millisecond
	m.Packet(tcp(0, 1000, 80, flow.TCPSyn, 60))
	m.Packet(tcp(1*ms, 1000, 80, flow.TCPAck, 52))
	m.Packet(tcp(5*ms, 1000, 80, flow.TCPFin|flow.TCPAck, 52))
	m.Packet(tcp(6*ms, 1000, 80, flow.TCPAck, 52)) // last ACK, within the grace
	// A reverse flow that is reset.
	m.Packet(&Packet{Time: at(7 * ms), Src: a2, Dst: a1, SrcPort: 80, DstPort: 1000, Proto: flow.ProtoTCP, TCPFlags: flow.TCPRst, Length: 40})
	// 2s after the last ACK both are gone; this packet starts a new flow.
	m.Packet(tcp(2*time.Second+10*ms, 1000, 80, flow.TCPSyn, 60))
	if s := m.Stats(); s.ExpiredTCP != 2 || s.Active != 1 {
		t.Fatalf("stats = %+v", s)
	}
	m.Flush()
	if len(c.flows) != 3 {
		t.Fatalf("got %d flows", len(c.flows))
	}
	f := c.flows[0]
	if f.Packets != 4 || f.Bytes != 216 || f.TCPFlags != flow.TCPSyn|flow.TCPAck|flow.TCPFin || !f.FIN {
		t.Errorf("closed flow = %d pkts %d bytes flags %#x", f.Packets, f.Bytes, f.TCPFlags)
	}
	if !f.TimeReceived.Equal(t0.Add(2*time.Second + 10*ms)) {
		t.Errorf("closed flow received %v", f.TimeReceived.Sub(t0))
	}
	if !c.flows[1].RST || c.flows[1].SrcPort != 80 {
		t.Errorf("reset flow = %+v", c.flows[1])
	}
}

// UDP and ICMP flows ignore FIN/RST bits: only TCP closes early.
func TestNonTCPIgnoresFlags(t *testing.T) {
	m, _ := newMeter(t, Config{})
	p := &Packet{Time: at(0), Src: a1, Dst: a2, SrcPort: 53, DstPort: 53, Proto: flow.ProtoUDP, TCPFlags: flow.TCPFin, Length: 80}
	m.Packet(p)
	m.Advance(at(5 * time.Second))
	if s := m.Stats(); s.Active != 1 {
		t.Fatalf("UDP flow expired early: %+v", s)
	}
}

func TestForcedExpiry(t *testing.T) {
	m, c := newMeter(t, Config{MaxFlows: 2})
	m.Packet(tcp(0, 1, 80, flow.TCPAck, 10))
	m.Packet(tcp(1*time.Second, 2, 80, flow.TCPAck, 10))
	m.Packet(tcp(2*time.Second, 1, 80, flow.TCPAck, 10)) // port 1 is now the newer
	m.Packet(tcp(3*time.Second, 3, 80, flow.TCPAck, 10)) // forces out port 2
	m.Flush()
	if s := m.Stats(); s.ExpiredForced != 1 || s.Peak != 2 {
		t.Errorf("stats = %+v", s)
	}
	if len(c.flows) != 3 || c.flows[0].SrcPort != 2 || !c.flows[0].TimeReceived.Equal(t0.Add(3*time.Second)) {
		t.Errorf("forced flow = %+v", c.flows[0])
	}
}

func TestBatches(t *testing.T) {
	m, c := newMeter(t, Config{BatchSize: 2})
	for i := range 5 {
		m.Packet(tcp(0, uint16(i), 80, flow.TCPSyn, 10))
	}
	m.Advance(at(20 * time.Second)) // all idle: 2+2 sent, 1 sent by Advance
	if got := c.batches; len(got) != 3 || got[0] != 2 || got[1] != 2 || got[2] != 1 {
		t.Errorf("batches = %v", got)
	}
	m.Flush()
	if len(c.batches) != 3 {
		t.Errorf("empty flush sent a batch: %v", c.batches)
	}
}

// A packet slightly out of order does not move the clock back and widens
// its flow's start.
func TestOutOfOrder(t *testing.T) {
	m, c := newMeter(t, Config{})
	m.Packet(tcp(10*time.Second, 1, 80, flow.TCPAck, 10))
	m.Packet(tcp(9*time.Second, 1, 80, flow.TCPAck, 10))
	m.Flush()
	f := c.flows[0]
	if f.Packets != 2 || !f.TimeFlowStart.Equal(t0.Add(9*time.Second)) || !f.TimeFlowEnd.Equal(t0.Add(10*time.Second)) || !f.TimeReceived.Equal(t0.Add(10*time.Second)) {
		t.Errorf("flow = %+v", f)
	}
}

func TestICMPAndV6(t *testing.T) {
	m, c := newMeter(t, Config{Type: flow.TypeCapture})
	v6 := netip.MustParseAddr("2001:db8::1")
	m.Packet(&Packet{Time: at(0), Src: v6, Dst: v6, DstPort: 128 << 8, Proto: flow.ProtoICMPv6, Length: 104})
	m.Packet(&Packet{Time: at(0), Src: a1, Dst: a2, DstPort: 3<<8 | 3, Proto: flow.ProtoICMP, Length: 56})
	m.Flush()
	if len(c.flows) != 2 || c.flows[0].ProtoName != "icmpv6" || c.flows[0].DstPort != 32768 || c.flows[1].DstPort != 771 || c.flows[1].Type != flow.TypeCapture {
		t.Errorf("flows = %+v", c.flows)
	}
}

func TestValidate(t *testing.T) {
	err := Config{ActiveTimeout: -1, IdleTimeout: -1, MaxFlows: -1, BatchSize: -1, Type: "X"}.Validate()
	for _, want := range []string{"active_timeout", "idle_timeout", "max_flows", "batch_size", "type"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("nil handler accepted")
	}
	if c := (Config{}).withDefaults(); c != DefaultConfig() {
		t.Errorf("zero config = %+v", c)
	}
}

func TestNoAllocsExistingFlow(t *testing.T) {
	m, _ := newMeter(t, Config{})
	p := tcp(0, 1, 80, flow.TCPAck, 100)
	m.Packet(p)
	allocs := testing.AllocsPerRun(1000, func() {
		p.Time += 1000
		m.Packet(p)
	})
	if allocs != 0 {
		t.Errorf("%v allocs per packet of an existing flow", allocs)
	}
}

// Many flows, idle and active expiry interleaved: the lists stay consistent
// and every packet is accounted for once.
func TestConservation(t *testing.T) {
	var pkts, bytes uint64
	m, c := newMeter(t, Config{MaxFlows: 400, IdleTimeout: 3 * time.Second, ActiveTimeout: 10 * time.Second})
	x := uint32(1)
	for i := range 200000 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		fl := uint8(flow.TCPAck)
		if x%97 == 0 {
			fl |= flow.TCPFin
		}
		keys := uint32(1000) // more than MaxFlows at first, then fewer
		if i > 100000 {
			keys = 200
		}
		m.Packet(tcp(time.Duration(i)*5*time.Millisecond, uint16(x%keys), 80, fl, x%1500))
		pkts++
		bytes += uint64(x % 1500)
	}
	m.Flush()
	var gp, gb uint64
	for _, f := range c.flows {
		gp += f.Packets
		gb += f.Bytes
	}
	s := m.Stats()
	if gp != pkts || gb != bytes || s.Flows != uint64(len(c.flows)) || s.Active != 0 {
		t.Errorf("packets %d/%d bytes %d/%d stats %+v", gp, pkts, gb, bytes, s)
	}
	if s.ExpiredActive+s.ExpiredIdle+s.ExpiredTCP+s.ExpiredForced+s.ExpiredFlush != s.Flows {
		t.Errorf("expiry counters do not add up: %+v", s)
	}
	if s.ExpiredForced == 0 || s.ExpiredTCP == 0 || s.ExpiredIdle == 0 || s.ExpiredActive == 0 {
		t.Errorf("some expiry path not exercised: %+v", s)
	}
}

func BenchmarkPacketExistingFlow(b *testing.B) {
	m, _ := newMeter(b, Config{})
	const n = 1024
	ps := make([]Packet, n)
	for i := range ps {
		ps[i] = *tcp(0, uint16(i), 443, flow.TCPAck, 1500)
		m.Packet(&ps[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := &ps[i%n]
		p.Time += 1000
		m.Packet(p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

func BenchmarkPacketNewFlow(b *testing.B) {
	m, err := New(Config{MaxFlows: 1 << 16}, func([]flow.Flow) {})
	if err != nil {
		b.Fatal(err)
	}
	p := tcp(0, 0, 443, flow.TCPSyn, 60)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Time += 1000
		p.SrcPort = uint16(i)
		p.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		m.Packet(p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
