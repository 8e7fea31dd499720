package kafka

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// goflow2's message (goodMessage) decodes field by field into flowguard's
// flow: volumes renormalised by the sampling rate, masks as prefixes,
// fields flowguard has no place for skipped.
func TestDecodeMessage(t *testing.T) {
	out, err := decodeRecord(goodMessage(t), nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("%d flows, %v", len(out), err)
	}
	f := out[0]
	want := flow.Flow{
		Type: flow.TypeNetFlowV9, SamplerAddress: netip.MustParseAddr("192.0.2.1"), SequenceNum: 7,
		SamplingRate: 100, InIf: 3, OutIf: 4,
		TimeReceived:  time.Unix(1_700_000_001, 0).UTC(),
		TimeFlowStart: time.Unix(1_700_000_000, 0).UTC(), TimeFlowEnd: time.Unix(1_700_000_000, 500_000_000).UTC(),
		SrcAddr: netip.MustParseAddr("198.51.100.7"), DstAddr: netip.MustParseAddr("2001:db8::1"),
		SrcPort: 40000, DstPort: 443, Proto: 6, ProtoName: "tcp", TCPFlags: 0x12, SYN: true, ACK: true,
		Bytes: 150000, Packets: 300, RawBytes: 1500, RawPackets: 3, SrcAS: 64500, DstAS: 64501,
		NextHop: netip.MustParseAddr("192.0.2.254"),
		SrcNet:  netip.MustParsePrefix("198.51.100.0/24"), DstNet: netip.MustParsePrefix("2001:db8::/48"),
	}
	if flowKey(&f) != flowKey(&want) || f.TimeReceived != want.TimeReceived || f.SrcNet != want.SrcNet ||
		f.DstNet != want.DstNet || f.NextHop != want.NextHop || f.SrcAS != want.SrcAS || f.InIf != want.InIf ||
		f.SequenceNum != want.SequenceNum || f.ProtoName != want.ProtoName || !f.SYN || !f.ACK {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
}

// ICMP type and code become the destination port, as flowguard's own
// decoders carry them; an empty record holds no flow.
func TestDecodeICMP(t *testing.T) {
	// proto=1 (field 20), icmp_type=3 (31), icmp_code=1 (32)
	msg := []byte{0xa0, 0x01, 0x01, 0xf8, 0x01, 0x03, 0x80, 0x02, 0x01}
	out, err := decodeRecord(append([]byte{byte(len(msg))}, msg...), nil)
	if err != nil || len(out) != 1 || out[0].DstPort != 3<<8|1 || out[0].ProtoName != "icmp" {
		t.Fatalf("%+v, %v", out, err)
	}
	if out, err := decodeRecord(nil, nil); err != nil || len(out) != 0 {
		t.Errorf("empty record: %d flows, %v", len(out), err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(goodMessage(f))
	f.Add([]byte{0x05, 0x08, 0x01, 0x32, 0x03, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decodeRecord(b, nil)
		if len(out) > len(b) {
			t.Fatalf("%d flows from %d bytes", len(out), len(b))
		}
		_ = err
	})
}

// Decoding a goflow2 message allocates nothing once the batch has room.
func BenchmarkDecodeRecord(b *testing.B) {
	msg := goodMessage(b)
	out := make([]flow.Flow, 0, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		var err error
		out, err = decodeRecord(msg, out[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}
