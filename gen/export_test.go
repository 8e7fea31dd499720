package gen_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

var now = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

// testFlows returns background flows stamped to end at now.
func testFlows(n int) []flow.Flow {
	fl := gen.BackgroundFlows(11, n)
	for i := range fl {
		d := fl[i].TimeFlowEnd.Sub(fl[i].TimeFlowStart).Truncate(time.Millisecond)
		fl[i].TimeFlowEnd = now.Add(-time.Duration(i) * time.Millisecond)
		fl[i].TimeFlowStart = fl[i].TimeFlowEnd.Add(-d)
	}
	return fl
}

// encodeAll encodes every flow, a datagram at a time.
func encodeAll(t *testing.T, p gen.Proto, cfg gen.EncoderConfig, fl []flow.Flow, at func(i int) time.Time) [][]byte {
	t.Helper()
	enc, err := gen.NewEncoder(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i, rest := 0, fl; len(rest) > 0; i++ {
		b, n := enc.Encode(nil, rest, at(i))
		if n == 0 || len(b) > 1400 {
			t.Fatalf("datagram %d: %d flows, %d bytes", i, n, len(b))
		}
		out = append(out, b)
		rest = rest[n:]
	}
	return out
}

func u(b any) uint64 {
	v := b.([]byte)
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

func TestNetFlowV5Decodes(t *testing.T) {
	fl := testFlows(100)
	boot := now.Add(-time.Hour)
	dgs := encodeAll(t, gen.NetFlowV5, gen.EncoderConfig{Boot: boot}, fl, func(int) time.Time { return now })
	var got []netflowlegacy.RecordsNetFlowV5
	var seq uint32
	for _, d := range dgs {
		var p netflowlegacy.PacketNetFlowV5
		if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(d), &p); err != nil {
			t.Fatal(err)
		}
		if p.FlowSequence != seq || int(p.Count) != len(p.Records) || p.SysUptime != uint32(time.Hour.Milliseconds()) {
			t.Fatalf("header %+v, want sequence %d", p, seq)
		}
		seq += uint32(p.Count)
		got = append(got, p.Records...)
	}
	if len(got) != len(fl) || len(dgs) != 4 {
		t.Fatalf("%d records in %d datagrams", len(got), len(dgs))
	}
	for i, r := range got {
		f := &fl[i]
		src, dst := f.SrcAddr.As4(), f.DstAddr.As4()
		if uint32(r.SrcAddr) != binary.BigEndian.Uint32(src[:]) || uint32(r.DstAddr) != binary.BigEndian.Uint32(dst[:]) ||
			r.SrcPort != f.SrcPort || r.DstPort != f.DstPort || r.Proto != f.Proto || r.TCPFlags != f.TCPFlags ||
			uint64(r.DPkts) != f.RawPackets || uint64(r.DOctets) != f.RawBytes ||
			r.Last != uint32(f.TimeFlowEnd.Sub(boot).Milliseconds()) || r.First != uint32(f.TimeFlowStart.Sub(boot).Milliseconds()) {
			t.Fatalf("record %d: %+v\nflow %+v", i, r, f)
		}
	}
}

func TestNetFlowV9AndIPFIXDecode(t *testing.T) {
	for _, p := range []gen.Proto{gen.NetFlowV9, gen.IPFIX} {
		t.Run(p.String(), func(t *testing.T) {
			fl := testFlows(200)
			boot := now.Add(-time.Hour)
			// A datagram every second; the template is due every 3 s.
			dgs := encodeAll(t, p, gen.EncoderConfig{Boot: boot, SourceID: 7, TemplateEvery: 3 * time.Second}, fl,
				func(i int) time.Time { return now.Add(time.Duration(i) * time.Second) })
			templates := netflow.CreateTemplateSystem()
			var records []netflow.DataRecord
			var withTemplate []int
			var ipfixSeq uint32
			for i, d := range dgs {
				var v9 netflow.NFv9Packet
				var ipfix netflow.IPFIXPacket
				if err := netflow.DecodeMessageVersion(bytes.NewBuffer(d), templates, &v9, &ipfix); err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				sets := v9.FlowSets
				if p == gen.IPFIX {
					sets = ipfix.FlowSets
					if ipfix.ObservationDomainId != 7 || ipfix.SequenceNumber != ipfixSeq || int(ipfix.Length) != len(d) {
						t.Fatalf("ipfix header %+v, want sequence %d, length %d", ipfix, ipfixSeq, len(d))
					}
				} else if v9.SourceId != 7 || v9.SequenceNumber != uint32(i) {
					t.Fatalf("v9 header %+v", v9)
				}
				for _, s := range sets {
					switch s := s.(type) {
					case netflow.TemplateFlowSet:
						withTemplate = append(withTemplate, i)
					case netflow.DataFlowSet:
						records = append(records, s.Records...)
						ipfixSeq += uint32(len(s.Records))
					default:
						t.Fatalf("datagram %d: unexpected set %T", i, s)
					}
				}
				if p == gen.NetFlowV9 && int(v9.Count) != countRecords(sets) {
					t.Fatalf("v9 count %d, records %d", v9.Count, countRecords(sets))
				}
			}
			if len(withTemplate) < 3 || withTemplate[0] != 0 || withTemplate[1] != 3 {
				t.Errorf("templates in datagrams %v, want 0, 3, 6, ...", withTemplate)
			}
			if len(records) != len(fl) {
				t.Fatalf("%d records, want %d", len(records), len(fl))
			}
			for i, r := range records {
				f := &fl[i]
				v := map[uint16]any{}
				for _, d := range r.Values {
					v[d.Type] = d.Value
				}
				src, dst := f.SrcAddr.As4(), f.DstAddr.As4()
				ok := bytes.Equal(v[8].([]byte), src[:]) && bytes.Equal(v[12].([]byte), dst[:]) &&
					u(v[7]) == uint64(f.SrcPort) && u(v[11]) == uint64(f.DstPort) && u(v[4]) == uint64(f.Proto) &&
					u(v[6]) == uint64(f.TCPFlags) && u(v[1]) == f.RawBytes && u(v[2]) == f.RawPackets
				if p == gen.IPFIX {
					ok = ok && u(v[152]) == uint64(f.TimeFlowStart.UnixMilli()) && u(v[153]) == uint64(f.TimeFlowEnd.UnixMilli())
				} else {
					ok = ok && u(v[22]) == uint64(f.TimeFlowStart.Sub(boot).Milliseconds()) && u(v[21]) == uint64(f.TimeFlowEnd.Sub(boot).Milliseconds())
				}
				if !ok {
					t.Fatalf("record %d: %+v\nflow %+v", i, r, f)
				}
			}
		})
	}
}

func countRecords(sets []any) int {
	n := 0
	for _, s := range sets {
		switch s := s.(type) {
		case netflow.TemplateFlowSet:
			n += len(s.Records)
		case netflow.DataFlowSet:
			n += len(s.Records)
		}
	}
	return n
}

func TestSFlowDecodes(t *testing.T) {
	fl := testFlows(50)
	dgs := encodeAll(t, gen.SFlow5, gen.EncoderConfig{SamplingRate: 100, SourceID: 3, Agent: netip.MustParseAddr("127.0.1.1")}, fl,
		func(int) time.Time { return now })
	var n int
	for i, d := range dgs {
		var p sflow.Packet
		if err := sflow.DecodeMessageVersion(bytes.NewBuffer(d), &p); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if p.SequenceNumber != uint32(i) || p.SubAgentId != 3 || int(p.SamplesCount) != len(p.Samples) {
			t.Fatalf("header %+v", p)
		}
		for _, s := range p.Samples {
			fs, ok := s.(sflow.FlowSample)
			if !ok || fs.SamplingRate != 100 || len(fs.Records) != 1 {
				t.Fatalf("sample %+v", s)
			}
			h := fs.Records[0].Data.(sflow.SampledHeader)
			f := &fl[n]
			ip := h.HeaderData[14:]
			src, dst := f.SrcAddr.As4(), f.DstAddr.As4()
			if h.Protocol != 1 || !bytes.Equal(ip[12:16], src[:]) || !bytes.Equal(ip[16:20], dst[:]) ||
				binary.BigEndian.Uint16(ip[20:]) != f.SrcPort || binary.BigEndian.Uint16(ip[22:]) != f.DstPort || ip[9] != f.Proto ||
				uint64(binary.BigEndian.Uint16(ip[2:])) != min(f.RawBytes/f.RawPackets, 65535) {
				t.Fatalf("sample %d: header %x\nflow %+v", n, h.HeaderData, f)
			}
			n++
		}
	}
	if n != len(fl) {
		t.Fatalf("%d samples, want %d", n, len(fl))
	}
}

func TestStreamRefusesNonLoopback(t *testing.T) {
	for _, to := range []string{"192.0.2.1:2055", "10.0.0.1:2055", "[2001:db8::1]:2055", "0.0.0.0:2055"} {
		_, err := gen.Stream(context.Background(), gen.StreamConfig{To: netip.MustParseAddrPort(to), Proto: gen.NetFlowV9})
		if err == nil {
			t.Errorf("%s: no error", to)
		}
	}
}

// TestStreamPaces sends to a local socket and checks count, pacing and
// that every datagram decodes.
func TestStreamPaces(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadBuffer(8 << 20)
	to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	done := make(chan [2]int)
	go func() {
		templates := netflow.CreateTemplateSystem()
		buf := make([]byte, 65536)
		var dgs, recs int
		for {
			pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := pc.Read(buf)
			if err != nil {
				done <- [2]int{dgs, recs}
				return
			}
			var ipfix netflow.IPFIXPacket
			if err := netflow.DecodeMessageVersion(bytes.NewBuffer(buf[:n]), templates, &netflow.NFv9Packet{}, &ipfix); err != nil {
				t.Errorf("decode: %v", err)
			}
			dgs++
			for _, s := range ipfix.FlowSets {
				if d, ok := s.(netflow.DataFlowSet); ok {
					recs += len(d.Records)
				}
			}
		}
	}()
	st, err := gen.Stream(context.Background(), gen.StreamConfig{
		To: to, Proto: gen.IPFIX, Rate: 20000, Count: 10000, Exporters: 2, Pool: 3000,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := <-done
	if st.Flows != 10000 || got[1] != 10000 || uint64(got[0]) != st.Datagrams {
		t.Errorf("sent %+v; received %d datagrams, %d records", st, got[0], got[1])
	}
	if st.Elapsed < 450*time.Millisecond || st.Elapsed > 1500*time.Millisecond {
		t.Errorf("10,000 flows at 20,000/s took %s", st.Elapsed)
	}
}
