package sflow

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/pcap"
)

// datagrams returns the payloads, sources and times of a capture's UDP
// datagrams.
func datagrams(t testing.TB, path string) (payloads [][]byte, srcs []netip.AddrPort, times []time.Time) {
	t.Helper()
	r, err := pcap.Open(path, pcap.Config{Datagram: func(ts time.Time, src, dst netip.AddrPort, payload []byte) bool {
		payloads = append(payloads, append([]byte(nil), payload...))
		srcs = append(srcs, src)
		times = append(times, ts)
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	return payloads, srcs, times
}

type tuple struct {
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
}

func (k tuple) String() string {
	return fmt.Sprintf("%v:%d->%v:%d/%d", k.src, k.sport, k.dst, k.dport, k.proto)
}

// readFlows reads ingest/pcap's golden NAME.flows (proto src sport dst
// dport packets bytes, from tshark's decode of the original packets).
func readFlows(t testing.TB, paths ...string) map[tuple][2]uint64 {
	m := make(map[tuple][2]uint64)
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			c := strings.Fields(sc.Text())
			if len(c) != 7 {
				continue
			}
			n := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
			k := tuple{uint8(n(c[0])), netip.MustParseAddr(c[1]), netip.MustParseAddr(c[3]), uint16(n(c[2])), uint16(n(c[4]))}
			v := m[k]
			v[0] += n(c[5])
			v[1] += n(c[6])
			m[k] = v
		}
	}
	return m
}

// pmacctd-sfprobe.pcap is real sFlow: pmacctd's sfprobe plugin sampling
// 1 in 1 the 573 packets of ingest/pcap's scan.pcap, udp_icmp_nano.pcap and
// ipv6.pcap (see testdata/make-captures.sh). Every sample must match the
// original packets' 5-tuples and IP lengths (ingest/pcap's .flows files,
// made with tshark from the original pcaps); pmacctd reports frame_length
// as the IP length + 4 (FCS). It sent 570 samples: the last 3 IPv6 packets
// never left it (tshark agrees: 570 flow samples in 60 datagrams).
func TestPmacctdCapture(t *testing.T) {
	dgs, srcs, times := datagrams(t, "testdata/pmacctd-sfprobe.pcap")
	d := NewDecoder(Config{})
	var all []flow.Flow
	for i := range dgs {
		out, err := d.Decode(srcs[i], times[i], dgs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range out {
			if f.TimeFlowStart != times[i] || f.TimeFlowEnd != times[i] || f.TimeReceived != times[i] {
				t.Fatalf("flow times %v %v %v, want the datagram's %v", f.TimeFlowStart, f.TimeFlowEnd, f.TimeReceived, times[i])
			}
		}
		all = append(all, out...)
	}
	if len(all) != 570 {
		t.Errorf("%d flows, want 570", len(all))
	}
	ref := readFlows(t, "../pcap/testdata/scan.flows", "../pcap/testdata/udp_icmp_nano.flows", "../pcap/testdata/ipv6.flows")
	got := map[tuple][2]uint64{}
	for _, f := range all {
		if f.Type != flow.TypeSFlow5 || f.SamplerAddress != netip.MustParseAddr("192.0.2.10") || f.SamplingRate != 1 ||
			f.Packets != 1 || f.InIf != 0 || f.OutIf != 0 || f.SequenceNum == 0 {
			t.Fatalf("flow %+v", f)
		}
		k := tuple{f.Proto, f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort}
		v := got[k]
		v[0] += f.Packets
		v[1] += f.Bytes - 4
		got[k] = v
	}
	unsent := map[string]bool{"::1:79->::1:49226/6": true, "::1:81->::1:49226/6": true, "::1:49226->::1:81/6": true}
	for k, v := range ref {
		if got[k] != v && !unsent[k.String()] {
			t.Errorf("%v: got %v, the pcap holds %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := ref[k]; !ok {
			t.Errorf("%v: %v not in the pcap", k, v)
		}
	}
	st := d.Stats()
	want := AgentStats{Exporter: netip.MustParseAddr("127.0.0.1"), Agent: netip.MustParseAddr("192.0.2.10"), SubAgent: 7,
		Packets: 60, Flows: 570, FlowSamples: 570, SamplingRate: 1, LastSeen: times[len(times)-1]}
	if len(st.Agents) != 1 || st.Agents[0] != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

// xdr builds sFlow datagrams (XDR: big-endian 32-bit words, opaque data
// padded to 4 bytes) for the hand-made tests.
type xdr []byte

func (x xdr) u32(vs ...uint32) xdr {
	for _, v := range vs {
		x = append(x, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return x
}

func (x xdr) opaque(b []byte) xdr {
	x = x.u32(uint32(len(b)))
	x = append(x, b...)
	for len(x)%4 != 0 {
		x = append(x, 0)
	}
	return x
}

// record is a flow or counter record / sample: format, length, body.
func (x xdr) record(format uint32, body xdr) xdr { return x.u32(format).opaque(body) }

// datagram is the v5 header (IPv4 agent) followed by samples.
func datagram(agent netip.Addr, sub, seq uint32, samples ...xdr) []byte {
	x := xdr{}.u32(5)
	if agent.Is4() {
		a := agent.As4()
		x = x.u32(1)
		x = append(x, a[:]...)
	} else {
		a := agent.As16()
		x = x.u32(2)
		x = append(x, a[:]...)
	}
	x = x.u32(sub, seq, 123456, uint32(len(samples)))
	for _, s := range samples {
		x = append(x, s...)
	}
	return x
}

// compact flow sample (0:1) with the given records.
func compactSample(rate, in, out uint32, records ...xdr) xdr {
	body := xdr{}.u32(1, 3, rate, 1000, 0, in, out, uint32(len(records)))
	for _, r := range records {
		body = append(body, r...)
	}
	return xdr{}.record(1, body)
}

// expanded flow sample (0:3).
func expandedSample(rate, in, out uint32, records ...xdr) xdr {
	body := xdr{}.u32(1, 0, 3, rate, 1000, 0, 0, in, 0, out, uint32(len(records)))
	for _, r := range records {
		body = append(body, r...)
	}
	return xdr{}.record(3, body)
}

func rawHeader(proto, frameLen uint32, hdr []byte) xdr {
	return xdr{}.record(1, xdr{}.u32(proto, frameLen, 4).opaque(hdr))
}

func hexBytes(s string) []byte {
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s)
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			panic(err)
		}
		b[i] = byte(v)
	}
	return b
}

var (
	// Ethernet, 802.1Q VLAN 10, IPv6 2001:db8::1 -> 2001:db8::2, a hop-by-hop
	// options header, then UDP 5353 -> 53.
	ethVLANv6UDP = hexBytes(`
		020000000002 020000000001 8100 000a 86dd
		60000000 0018 00 40 20010db8000000000000000000000001 20010db8000000000000000000000002
		11 00 0100 00000000
		14e9 0035 0010 0000 00000000 00000000`)
	// IPv4 10.0.0.1 -> 10.0.0.2 ICMP echo request (type 8 code 0), raw IP header (protocol 11).
	ipv4ICMP = hexBytes(`45000054 0000 4000 40 01 0000 0a000001 0a000002 0800 0000 00010001`)
	// Ethernet, QinQ (88a8 + 8100), IPv4 192.0.2.1:40000 -> 198.51.100.7:443 TCP SYN|ACK.
	ethQinQTCP = hexBytes(`
		020000000002 020000000001 88a8 0064 8100 000a 0800
		45000028 0000 4000 40 06 0000 c0000201 c6336407
		9c40 01bb 00000001 00000000 50 12 ffff 0000 0000`)
)

func TestHandBuilt(t *testing.T) {
	agent := netip.MustParseAddr("203.0.113.9")
	src := netip.MustParseAddrPort("198.51.100.1:6343")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	router := xdr{}.record(1002, xdr{}.u32(1, 0xc0000201, 24, 16))                                              // next hop 192.0.2.1, masks 24 / 16
	gateway := xdr{}.record(1003, xdr{}.u32(1, 0xc0000202, 65000, 64500, 64501, 1, 2, 2, 64502, 64503, 0, 100)) // AS path: one AS_SEQUENCE (2) of 2: 64502 64503; no communities; localpref 100
	ipv4rec := xdr{}.record(3, xdr{}.u32(1500, 17, 0x0a000001, 0x0a000009, 1234, 53, 0, 0))
	counter := xdr{}.record(2, xdr{}.u32(1, 1, 1).record(1, xdr{}.u32(0, 0, 0)))
	dg := datagram(agent, 3, 100,
		expandedSample(512, 4, 5, rawHeader(1, 1000, ethVLANv6UDP)),
		compactSample(0, 7, 0x80000002, rawHeader(11, 84, ipv4ICMP)),
		compactSample(2048, 1, 2, rawHeader(1, 60, ethQinQTCP), router, gateway),
		counter,
		compactSample(10, 1, 2, ipv4rec), // no header: the sampled IPv4 record
	)
	d := NewDecoder(Config{DefaultSampling: 100})
	out, err := d.Decode(src, now, dg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 {
		t.Fatalf("%d flows, want 4", len(out))
	}
	type want struct {
		src, dst     string
		sport, dport uint16
		proto        uint8
		flags        uint8
		in, out      uint32
		rate         uint32
		bytes        uint64
	}
	for i, w := range []want{
		{"2001:db8::1", "2001:db8::2", 5353, 53, 17, 0, 4, 5, 512, 1000 * 512},
		{"10.0.0.1", "10.0.0.2", 0, 8 << 8, 1, 0, 7, 0, 100, 84 * 100}, // rate 0: the default; output format 2 (multiple): no out_if
		{"192.0.2.1", "198.51.100.7", 40000, 443, 6, 0x12, 1, 2, 2048, 60 * 2048},
		{"10.0.0.1", "10.0.0.9", 1234, 53, 17, 0, 1, 2, 10, 1500 * 10},
	} {
		f := out[i]
		if f.SrcAddr.String() != w.src || f.DstAddr.String() != w.dst || f.SrcPort != w.sport || f.DstPort != w.dport ||
			f.Proto != w.proto || f.TCPFlags != w.flags || f.InIf != w.in || f.OutIf != w.out || f.SamplingRate != w.rate ||
			f.Bytes != w.bytes || f.Packets != uint64(w.rate) || f.RawPackets != 1 || f.SamplerAddress != agent ||
			f.SequenceNum != 100 || f.TimeReceived != now || f.Type != flow.TypeSFlow5 {
			t.Errorf("flow %d: %+v, want %+v", i, f, w)
		}
	}
	if f := out[2]; f.NextHop.String() != "192.0.2.1" || f.SrcNet.String() != "192.0.2.0/24" ||
		f.DstNet.String() != "198.51.0.0/16" || f.SrcAS != 64500 || f.DstAS != 64503 || !f.SYN || !f.ACK {
		t.Errorf("extended records: %+v", f)
	}
	st := d.Stats().Agents[0]
	if st.FlowSamples != 4 || st.CounterSamples != 1 || st.Flows != 4 || st.SubAgent != 3 || st.Agent != agent {
		t.Errorf("stats %+v", st)
	}

	// An override wins over the samples' rates.
	d = NewDecoder(Config{SamplingOverride: map[netip.Addr]uint32{src.Addr(): 7}})
	out, _ = d.Decode(src, now, dg, nil)
	for _, f := range out {
		if f.SamplingRate != 7 || f.Packets != 7 {
			t.Errorf("override: %+v", f)
		}
	}

	// Every truncation of the datagram is an error or fewer flows, never a panic.
	for n := range len(dg) {
		out, err := NewDecoder(Config{}).Decode(src, now, dg[:n], nil)
		if err == nil && len(out) == 4 {
			t.Errorf("cut to %d bytes: no error", n)
		}
	}
}

// Sequence numbers count datagrams per agent and sub-agent: a gap is loss,
// a late datagram is not, a big jump back is a restart.
func TestSequence(t *testing.T) {
	agent := netip.MustParseAddr("203.0.113.9")
	src := netip.MustParseAddrPort("198.51.100.1:6343")
	now := time.Now()
	d := NewDecoder(Config{})
	for _, seq := range []uint32{1000, 1001, 1003, 1002, 1004, 1007} {
		d.Decode(src, now, datagram(agent, 0, seq), nil)
	}
	d.Decode(src, now, datagram(agent, 1, 5), nil) // another sub-agent: its own sequence
	for seq := uint32(1008); seq < 1020; seq++ {
		d.Decode(src, now, datagram(agent, 0, seq), nil)
	}
	d.Decode(src, now, datagram(agent, 0, 1), nil) // restart
	d.Decode(src, now, datagram(agent, 0, 2), nil)
	st := d.Stats()
	if len(st.Agents) != 2 || st.Agents[0].LostPackets != 2 || st.Agents[0].Restarts != 1 || st.Agents[1].LostPackets != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Stats may be read while Decode runs (go test -race).
func TestStatsConcurrent(t *testing.T) {
	dgs, srcs, times := datagrams(t, "testdata/pmacctd-sfprobe.pcap")
	d := NewDecoder(Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var out []flow.Flow
		for round := range 10 {
			for i := range dgs {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(round)}), srcs[i].Port())
				out, _ = d.Decode(src, times[i].Add(time.Duration(round)*time.Hour), dgs[i], out[:0])
			}
		}
	}()
	for {
		select {
		case <-done:
			if st := d.Stats(); len(st.Agents) == 0 {
				t.Error("no agents")
			}
			return
		default:
			d.Stats()
		}
	}
}
