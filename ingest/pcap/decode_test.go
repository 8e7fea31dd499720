package pcap

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// ipv4 builds an IPv4 header with hl 32-bit words, then l4.
func ipv4(hl int, proto uint8, frag uint16, total int, l4 []byte) []byte {
	h := make([]byte, hl*4)
	h[0] = 0x40 | byte(hl)
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8], h[9] = 64, proto
	copy(h[12:], []byte{192, 0, 2, 1, 198, 51, 100, 2})
	return append(h, l4...)
}

func ipv6(next uint8, plen int, rest []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(plen))
	h[6], h[7] = next, 64
	copy(h[8:], netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(h[24:], netip.MustParseAddr("2001:db8::2").AsSlice())
	return append(h, rest...)
}

var tcpSyn = []byte{0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flow.TCPSyn, 0xff, 0xff, 0, 0, 0, 0}

func TestDecode(t *testing.T) {
	udp := []byte{0x13, 0x88, 0x08, 0x07, 0, 12, 0, 0, 'a', 'b', 'c', 'd', 'p', 'a', 'd'}
	for _, c := range []struct {
		name         string
		link         uint32
		data         []byte
		wire         uint32
		want         status
		proto        uint8
		sport, dport uint16
		flags        uint8
		length       uint32
		payload      string
	}{
		{"tcp", LinkRaw, ipv4(5, 6, 0, 40, tcpSyn), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 40, ""},
		{"options", LinkRaw, ipv4(8, 6, 0, 52, tcpSyn), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 52, ""},
		{"snaplen: IP length from the header", LinkRaw, ipv4(5, 6, 0, 1500, tcpSyn), 1500, statusOK, 6, 1234, 80, flow.TCPSyn, 1500, ""},
		{"TSO: zero IP length", LinkIPv4, ipv4(5, 6, 0, 0, tcpSyn), 9000, statusOK, 6, 1234, 80, flow.TCPSyn, 9000, ""},
		{"first fragment", LinkRaw, ipv4(5, 17, 0x2000, 1500, udp), 1500, statusOK, 17, 5000, 2055, 0, 1500, "abcd"},
		{"later fragment", LinkRaw, ipv4(5, 17, 0x00b9, 100, []byte{1, 2, 3}), 0, statusOK, 17, 0, 0, 0, 100, ""},
		{"udp padding dropped", LinkRaw, ipv4(5, 17, 0, 32, udp), 0, statusOK, 17, 5000, 2055, 0, 32, "abcd"},
		{"icmp", LinkRaw, ipv4(5, 1, 0, 28, []byte{3, 3, 0, 0}), 0, statusOK, 1, 0, 0x0303, 0, 28, ""},
		{"gre: no ports", LinkRaw, ipv4(5, 47, 0, 24, []byte{0, 0, 8, 0}), 0, statusOK, 47, 0, 0, 0, 24, ""},
		{"tcp cut before ports", LinkRaw, ipv4(5, 6, 0, 40, tcpSyn[:3]), 0, statusTruncated, 0, 0, 0, 0, 0, ""},
		{"tcp cut before flags", LinkRaw, ipv4(5, 6, 0, 40, tcpSyn[:8]), 0, statusOK, 6, 1234, 80, 0, 40, ""},
		{"options cut", LinkRaw, ipv4(8, 6, 0, 52, nil)[:24], 0, statusTruncated, 0, 0, 0, 0, 0, ""},
		{"ihl < 5", LinkRaw, ipv4(4, 6, 0, 40, tcpSyn), 0, statusMalformed, 0, 0, 0, 0, 0, ""},
		{"total < ihl", LinkRaw, ipv4(6, 6, 0, 20, tcpSyn), 0, statusMalformed, 0, 0, 0, 0, 0, ""},
		{"version 5", LinkRaw, []byte{0x50, 1, 2, 3}, 0, statusMalformed, 0, 0, 0, 0, 0, ""},
		{"v4 on the v6 link", LinkIPv6, ipv4(5, 6, 0, 40, tcpSyn), 0, statusMalformed, 0, 0, 0, 0, 0, ""},
		{"ipv6 tcp", LinkRaw, ipv6(6, 20, tcpSyn), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 60, ""},
		{"ipv6 icmpv6", LinkIPv6, ipv6(58, 8, []byte{128, 0, 0, 0, 0, 0, 0, 0}), 0, statusOK, 58, 0, 0x8000, 0, 48, ""},
		{"ipv6 hop-by-hop, dest opts, tcp", LinkRaw,
			ipv6(0, 36, append([]byte{60, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0}, tcpSyn...)), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 76, ""},
		{"ipv6 first fragment", LinkRaw, ipv6(44, 28, append([]byte{6, 0, 0, 1, 0, 0, 0, 1}, tcpSyn...)), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 68, ""},
		{"ipv6 later fragment", LinkRaw, ipv6(44, 16, []byte{17, 0, 0x05, 0x28, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}), 0, statusOK, 17, 0, 0, 0, 56, ""},
		{"ipv6 ext header cut", LinkRaw, ipv6(0, 36, nil), 0, statusTruncated, 0, 0, 0, 0, 0, ""},
		{"ipv6 ext header past the packet", LinkRaw, ipv6(0, 8, []byte{6, 200, 0, 0, 0, 0, 0, 0}), 0, statusMalformed, 0, 0, 0, 0, 0, ""},
		{"ipv6 esp", LinkRaw, ipv6(50, 8, []byte{0, 0, 0, 1, 0, 0, 0, 1}), 0, statusOK, 50, 0, 0, 0, 48, ""},
		{"ipv6 short", LinkRaw, ipv6(6, 20, nil)[:39], 0, statusTruncated, 0, 0, 0, 0, 0, ""},
		{"ethernet vlan", LinkEthernet, append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0, 0, 5, 0x08, 0}, ipv4(5, 6, 0, 40, tcpSyn)...), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 40, ""},
		{"ethernet vlan cut", LinkEthernet, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0, 0, 5}, 0, statusTruncated, 0, 0, 0, 0, 0, ""},
		{"arp", LinkEthernet, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06, 0, 1}, 0, statusNonIP, 0, 0, 0, 0, 0, ""},
		{"null big-endian writer", LinkNull, append([]byte{0, 0, 0, 2}, ipv4(5, 6, 0, 40, tcpSyn)...), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 40, ""},
		{"null linux AF_INET6", LinkNull, append([]byte{10, 0, 0, 0}, ipv6(6, 20, tcpSyn)...), 0, statusOK, 6, 1234, 80, flow.TCPSyn, 60, ""},
		{"null other family", LinkNull, []byte{7, 0, 0, 0, 1}, 0, statusNonIP, 0, 0, 0, 0, 0, ""},
		{"unsupported link", 105, ipv4(5, 6, 0, 40, tcpSyn), 0, statusUnsupported, 0, 0, 0, 0, 0, ""},
		{"empty", LinkRaw, nil, 0, statusTruncated, 0, 0, 0, 0, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d decoded
			got := decode(c.link, c.data, c.wire, &d)
			if got != c.want {
				t.Fatalf("status %d, want %d", got, c.want)
			}
			if got != statusOK {
				return
			}
			p := d.pkt
			if p.Proto != c.proto || p.SrcPort != c.sport || p.DstPort != c.dport || p.TCPFlags != c.flags || p.Length != c.length {
				t.Errorf("got proto %d ports %d>%d flags %#x length %d", p.Proto, p.SrcPort, p.DstPort, p.TCPFlags, p.Length)
			}
			if !p.Src.IsValid() || !p.Dst.IsValid() || p.Src == p.Dst {
				t.Errorf("addresses %v %v", p.Src, p.Dst)
			}
			if string(d.payload) != c.payload {
				t.Errorf("payload %q, want %q", d.payload, c.payload)
			}
		})
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	frame := append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x86, 0xdd}, ipv6(6, 20, tcpSyn)...)
	var d decoded
	if n := testing.AllocsPerRun(100, func() { decode(LinkEthernet, frame, 0, &d) }); n != 0 {
		t.Errorf("%v allocs per decode", n)
	}
}

// FuzzParse feeds arbitrary frames of every link type to the decoder: it
// must not panic, and what it accepts must be self-consistent.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"scan.pcap", "ipv6.pcap", "any_sll.pcap", "any_sll2.pcap", "udp_icmp.pcapng"} {
		for i, fr := range readFrames(f, name) {
			if i%7 == 0 {
				f.Add(uint16(fr.link), fr.data, fr.wire)
			}
		}
	}
	f.Add(uint16(LinkRaw), ipv6(0, 36, nil), uint32(0))
	f.Add(uint16(LinkNull), append([]byte{30, 0, 0, 0}, ipv6(44, 28, append([]byte{6, 0, 0, 1, 0, 0, 0, 1}, tcpSyn...))...), uint32(0))
	f.Fuzz(func(t *testing.T, link uint16, data []byte, wire uint32) {
		var d decoded
		if decode(uint32(link), data, wire, &d) != statusOK {
			return
		}
		if !d.pkt.Src.IsValid() || !d.pkt.Dst.IsValid() {
			t.Fatalf("accepted without addresses: %+v", d.pkt)
		}
		if d.payload != nil && d.pkt.Proto != flow.ProtoUDP {
			t.Fatalf("payload for proto %d", d.pkt.Proto)
		}
	})
}

// FuzzFile feeds arbitrary files to the reader: errors are fine, panics
// and hangs are not.
func FuzzFile(f *testing.F) {
	for _, c := range captures {
		data := readFile(f, c.file)
		f.Add(data[:min(len(data), 600)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := New(bytesReader(data), "fuzz", Config{BufferSize: 1})
		if err != nil {
			return
		}
		_ = r.Run(t.Context(), func([]flow.Flow) {})
	})
}
