package netflow

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// be appends big-endian numbers of the given widths: w(b, 2, x) etc.
type buf []byte

func (b buf) u8(v ...uint8) buf { return append(b, v...) }
func (b buf) u16(v ...uint16) buf {
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}
func (b buf) u32(v ...uint32) buf {
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}
func (b buf) u64(v ...uint64) buf {
	for _, x := range v {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	return b
}
func (b buf) addr(s string) buf { return append(b, netip.MustParseAddr(s).AsSlice()...) }

// Legacy headers: the export time 2026-01-02 03:04:05.5 and a sysUptime of
// 100 s, so uptime u ms is export - 100 s + u ms.
var (
	exportTime = time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	upAt       = func(ms uint32) time.Time {
		return exportTime.Add(-100*time.Second + time.Duration(ms)*time.Millisecond)
	}
	recvTime = exportTime.Add(time.Second)
)

func legacyHdr(version, count uint16) buf {
	return buf{}.u16(version, count).u32(100_000, uint32(exportTime.Unix()), 500_000_000)
}

func decodeOne(t *testing.T, d *Decoder, p []byte) []flow.Flow {
	t.Helper()
	out, err := d.Decode(testExporter, recvTime, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NetFlow v7 (Cisco Catalyst): 24-byte header (v5's without engine and
// sampling: 4 reserved bytes), 52-byte records:
//
//	srcaddr dstaddr nexthop input(2) output(2) dPkts dOctets First Last
//	srcport(2) dstport(2) flags1(1) tcp_flags(1) prot(1) tos(1) src_as(2)
//	dst_as(2) src_mask(1) dst_mask(1) flags2(2) router_sc(4)
func TestV7(t *testing.T) {
	p := legacyHdr(7, 2).u32(5000, 0)
	for i := range uint32(2) {
		p = p.addr("10.1.2.3").addr("192.0.2.77").addr("10.0.0.254").u16(3, 4).u32(10+i, 1500, 1000, 2000).
			u16(40000, 443).u8(0, flow.TCPSyn|flow.TCPAck, 6, 0).u16(64500, 64501).u8(24, 16).u16(0).addr("10.0.0.1")
	}
	d := NewDecoder(Config{})
	out := decodeOne(t, d, p)
	if len(out) != 2 {
		t.Fatalf("%d flows", len(out))
	}
	f := out[1]
	want := flow.Flow{Type: flow.TypeNetFlowV7, SamplerAddress: testExporter.Addr(), SequenceNum: 5000, SamplingRate: 1,
		InIf: 3, OutIf: 4, TimeReceived: recvTime, TimeFlowStart: upAt(1000), TimeFlowEnd: upAt(2000),
		SrcAddr: netip.MustParseAddr("10.1.2.3"), DstAddr: netip.MustParseAddr("192.0.2.77"), SrcPort: 40000, DstPort: 443,
		Proto: 6, ProtoName: "tcp", TCPFlags: 0x12, SYN: true, ACK: true, Bytes: 1500, Packets: 11, RawBytes: 1500, RawPackets: 11,
		SrcAS: 64500, DstAS: 64501, NextHop: netip.MustParseAddr("10.0.0.254"),
		SrcNet: netip.MustParsePrefix("10.1.2.0/24"), DstNet: netip.MustParsePrefix("192.0.0.0/16")}
	if !equalFlow(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
	// The next datagram skips 3 flows.
	p2 := legacyHdr(7, 1).u32(5005, 0)
	p2 = append(p2, p[24:24+52]...)
	decodeOne(t, d, p2)
	for range 9 {
		p2 = legacyHdr(7, 1).u32(binary.BigEndian.Uint32(p2[16:])+1, 0)
		p2 = append(p2, p[24:24+52]...)
		decodeOne(t, d, p2)
	}
	if es := d.Stats().Exporters[0]; es.Version != 7 || es.LostFlows != 3 || es.Flows != 12 {
		t.Errorf("stats %+v", es)
	}
}

func equalFlow(a, b flow.Flow) bool {
	return a.Type == b.Type && a.SamplerAddress == b.SamplerAddress && a.SequenceNum == b.SequenceNum &&
		a.SamplingRate == b.SamplingRate && a.InIf == b.InIf && a.OutIf == b.OutIf &&
		a.TimeReceived.Equal(b.TimeReceived) && a.TimeFlowStart.Equal(b.TimeFlowStart) && a.TimeFlowEnd.Equal(b.TimeFlowEnd) &&
		a.SrcAddr == b.SrcAddr && a.DstAddr == b.DstAddr && a.SrcPort == b.SrcPort && a.DstPort == b.DstPort &&
		a.Proto == b.Proto && a.ProtoName == b.ProtoName && a.TCPFlags == b.TCPFlags && a.SYN == b.SYN && a.ACK == b.ACK &&
		a.FIN == b.FIN && a.RST == b.RST && a.Bytes == b.Bytes && a.Packets == b.Packets &&
		a.RawBytes == b.RawBytes && a.RawPackets == b.RawPackets && a.SrcAS == b.SrcAS && a.DstAS == b.DstAS &&
		a.NextHop == b.NextHop && a.SrcNet == b.SrcNet && a.DstNet == b.DstNet
}

// NetFlow v8 router-based aggregations. Header (28): version, count,
// sysUptime, unix_secs, unix_nsecs, flow_sequence, engine_type(1),
// engine_id(1), aggregation(1), agg_version(1), reserved(4). Every record
// starts with flows, dPkts, dOctets, First, Last (20 bytes).
func TestV8(t *testing.T) {
	hdr := func(agg uint8, count uint16) buf {
		return legacyHdr(8, count).u32(77).u8(0, 1, agg, 2).u32(0)
	}
	common := buf{}.u32(3, 12, 9000, 1000, 2000)
	cases := []struct {
		name string
		agg  uint8
		rec  buf
		want flow.Flow
	}{
		{"AS", 1, buf{}.u16(64500, 64501, 7, 8),
			flow.Flow{SrcAS: 64500, DstAS: 64501, InIf: 7, OutIf: 8}},
		{"protocol-port", 2, buf{}.u8(17, 0).u16(0, 5353, 53),
			flow.Flow{Proto: 17, ProtoName: "udp", SrcPort: 5353, DstPort: 53}},
		{"source prefix", 3, buf{}.addr("10.20.0.0").u8(16, 0).u16(64500, 7, 0),
			flow.Flow{SrcNet: netip.MustParsePrefix("10.20.0.0/16"), SrcAS: 64500, InIf: 7}},
		{"destination prefix", 4, buf{}.addr("192.0.2.0").u8(24, 0).u16(64501, 8, 0),
			flow.Flow{DstNet: netip.MustParsePrefix("192.0.2.0/24"), DstAS: 64501, OutIf: 8}},
		{"prefix", 5, buf{}.addr("10.20.0.0").addr("192.0.2.0").u8(16, 24).u16(0, 64500, 64501, 7, 8),
			flow.Flow{SrcNet: netip.MustParsePrefix("10.20.0.0/16"), DstNet: netip.MustParsePrefix("192.0.2.0/24"),
				SrcAS: 64500, DstAS: 64501, InIf: 7, OutIf: 8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := hdr(c.agg, 1)
			p = append(p, common...)
			p = append(p, c.rec...)
			out := decodeOne(t, NewDecoder(Config{}), p)
			if len(out) != 1 {
				t.Fatalf("%d flows", len(out))
			}
			w := c.want
			w.Type, w.SamplerAddress, w.SequenceNum, w.SamplingRate = flow.TypeNetFlowV8, testExporter.Addr(), 77, 1
			w.TimeReceived, w.TimeFlowStart, w.TimeFlowEnd = recvTime, upAt(1000), upAt(2000)
			w.Packets, w.RawPackets, w.Bytes, w.RawBytes = 12, 12, 9000, 9000
			if !equalFlow(out[0], w) {
				t.Errorf("got  %+v\nwant %+v", out[0], w)
			}
		})
	}
	if _, err := NewDecoder(Config{}).Decode(testExporter, recvTime, append(hdr(9, 1), make([]byte, 32)...), nil); err != ErrAggregation {
		t.Errorf("aggregation 9: %v", err)
	}
}

// v5's header sampling interval (low 14 bits; the top 2 are the mode) is
// the rate; a configured override wins; a sampling-less exporter gets the
// configured default.
func TestV5Sampling(t *testing.T) {
	rec := buf{}.addr("10.0.0.1").addr("10.0.0.2").addr("0.0.0.0").u16(1, 2).u32(2, 100, 0, 0).u16(1, 2).u8(0, 0, 17, 0).u16(0, 0).u8(0, 0).u16(0)
	v5 := func(sampling uint16) []byte {
		p := legacyHdr(5, 1).u32(1).u8(0, 0).u16(sampling)
		return append(p, rec...)
	}
	for _, c := range []struct {
		cfg      Config
		sampling uint16
		rate     uint32
	}{
		{Config{}, 0x4000 | 1000, 1000},
		{Config{}, 0, 1},
		{Config{DefaultSampling: 64}, 0, 64},
		{Config{SamplingOverride: map[netip.Addr]uint32{testExporter.Addr(): 10}}, 1000, 10},
	} {
		out := decodeOne(t, NewDecoder(c.cfg), v5(c.sampling))
		if f := out[0]; f.SamplingRate != c.rate || f.Packets != 2*uint64(c.rate) || f.Bytes != 100*uint64(c.rate) || f.NextHop.IsValid() {
			t.Errorf("%+v: %+v", c, f)
		}
	}
}

// IPFIX features softflowd does not send: variable-length and enterprise
// fields, reduced-size numbers, delta times, systemInitTimeMilliseconds in
// the record, IPv6 masks and next hop, selector-specific sampling from
// options data, ICMP type/code, post counters, template withdrawal.
func TestIPFIXHandBuilt(t *testing.T) {
	exportSecs := uint32(exportTime.Unix())
	msg := func(seq uint32, sets ...buf) []byte {
		n := 16
		for _, s := range sets {
			n += len(s)
		}
		p := buf{}.u16(10, uint16(n)).u32(exportSecs, seq, 42)
		for _, s := range sets {
			p = append(p, s...)
		}
		return p
	}
	set := func(id uint16, body buf) buf { return buf{}.u16(id, uint16(4+len(body))).u8(body...) }
	tmpl := set(2, buf{}.u16(300, 14).
		u16(27, 16, 28, 16).       // src/dst IPv6
		u16(0x8000|100, 4).u32(9). // enterprise 9 field 100, 4 bytes: skipped
		u16(82, 0xFFFF).           // interfaceName, variable length: skipped
		u16(4, 1, 7, 2, 11, 2).
		u16(23, 4, 24, 2).   // post counters, packets reduced to 2 bytes
		u16(158, 4, 159, 4). // start/end delta µs
		u16(29, 1, 62, 16).
		u16(302, 4)) // selectorId
	opts := set(3, buf{}.u16(301, 3, 1).u16(302, 4, 305, 4, 306, 4)) // scope selectorId; 1 in 1+9
	optData := set(301, buf{}.u32(5, 1, 9))
	rec := buf{}.addr("2001:db8::1").addr("2001:db8:ff::2").u32(0xdeadbeef).
		u8(5).u8([]byte("eth0/")...). // short varlen
		u8(6).u16(40000, 443).u32(3000).u16(2).u32(2_000_000, 1_000_000).u8(48).addr("2001:db8::fe").u32(5)
	rec2 := buf{}.addr("2001:db8::1").addr("2001:db8:ff::2").u32(0).
		u8(255).u16(300).u8(make([]byte, 300)...).                             // long varlen
		u8(58).u16(0, 0x8000).u32(64).u16(1).u32(0, 0).u8(0).addr("::").u32(6) // ICMPv6 echo (128/0) in dst port; unknown selector
	data := set(300, append(rec, rec2...))
	d := NewDecoder(Config{})
	out := decodeOne(t, d, msg(0, tmpl, opts, optData, data))
	if len(out) != 2 {
		t.Fatalf("%d flows", len(out))
	}
	f := out[0]
	want := flow.Flow{Type: flow.TypeIPFIX, SamplerAddress: testExporter.Addr(), SamplingRate: 10,
		TimeReceived: recvTime, TimeFlowStart: exportTime.Add(-500 * time.Millisecond).Add(-2 * time.Second),
		TimeFlowEnd: exportTime.Add(-500 * time.Millisecond).Add(-time.Second),
		SrcAddr:     netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("2001:db8:ff::2"), SrcPort: 40000, DstPort: 443,
		Proto: 6, ProtoName: "tcp", RawBytes: 3000, RawPackets: 2, Bytes: 30000, Packets: 20,
		NextHop: netip.MustParseAddr("2001:db8::fe"), SrcNet: netip.MustParsePrefix("2001:db8::/48")}
	if !equalFlow(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
	// Selector 6 is unknown: but with a single sampler known, the domain's rate applies.
	if f := out[1]; f.Proto != 58 || f.DstPort != 0x8000 || f.SamplingRate != 10 || f.RawBytes != 64 {
		t.Errorf("flow 2: %+v", f)
	}
	if es := d.Stats().Exporters[0]; es.Templates != 2 {
		t.Errorf("stats %+v", es)
	}
	// Withdraw template 300: its data waits again.
	decodeOne(t, d, msg(3, set(2, buf{}.u16(300, 0))))
	if out := decodeOne(t, d, msg(3, data)); len(out) != 0 {
		t.Errorf("withdrawn template still decodes")
	}
	if st := d.Stats(); st.Exporters[0].Templates != 1 || st.Pending != 1 {
		t.Errorf("stats %+v", st)
	}
}

// v9 options data with FLOW_SAMPLER_ID scopes: each data record's sampler
// id picks its rate; first/last switched are sysUptime-relative.
func TestV9Samplers(t *testing.T) {
	hdr := func(seq uint32) buf { return buf{}.u16(9, 0).u32(100_000, uint32(exportTime.Unix()), seq, 7) }
	fs := func(id uint16, body buf) buf { return buf{}.u16(id, uint16(4+len(body))).u8(body...) }
	tmpl := fs(0, buf{}.u16(256, 7).u16(8, 4, 12, 4, 1, 4, 2, 4, 22, 4, 21, 4, 48, 1))
	opts := fs(1, buf{}.u16(257, 4, 8).u16(1, 4).u16(48, 1, 34, 4)) // scope: system (4 bytes); options: sampler id, interval
	optData := fs(257, buf{}.u32(0).u8(1).u32(100).u32(0).u8(2).u32(1000).u8(0, 0))
	data := fs(256, buf{}.addr("10.0.0.1").addr("10.0.0.2").u32(500, 5, 90_000, 95_000).u8(2).
		addr("10.0.0.1").addr("10.0.0.3").u32(500, 5, 90_000, 95_000).u8(1).u8(0, 0, 0)) // + padding
	p := append(hdr(1), tmpl...)
	p = append(p, opts...)
	p = append(p, optData...)
	p = append(p, data...)
	d := NewDecoder(Config{})
	out := decodeOne(t, d, p)
	if len(out) != 2 {
		t.Fatalf("%d flows", len(out))
	}
	exportWhole := exportTime.Truncate(time.Second) // v9 has no sub-second export time
	if out[0].SamplingRate != 1000 || out[1].SamplingRate != 100 || out[0].Packets != 5000 ||
		!out[0].TimeFlowStart.Equal(exportWhole.Add(-10*time.Second)) || !out[0].TimeFlowEnd.Equal(exportWhole.Add(-5*time.Second)) {
		t.Errorf("flows %+v", out)
	}
}
