package pcap

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/meter"
)

// Link types (LINKTYPE_* values as pcap and pcapng files carry them).
const (
	LinkNull     = 0   // BSD loopback, address family in host byte order
	LinkEthernet = 1   // Ethernet, with 802.1Q / 802.1ad (QinQ) tags
	LinkRawOld   = 12  // raw IP, as some old files spell LINKTYPE_RAW
	LinkRaw      = 101 // raw IPv4 or IPv6
	LinkLoop     = 108 // OpenBSD loopback, address family in network byte order
	LinkSLL      = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkIPv4     = 228 // raw IPv4
	LinkIPv6     = 229 // raw IPv6
	LinkSLL2     = 276 // Linux cooked capture v2 (tcpdump -i any, libpcap ≥ 1.10)
)

// status is the outcome of decoding one frame.
type status uint8

const (
	statusOK          status = iota
	statusNonIP              // a frame without IPv4/IPv6 (ARP, LLDP, ...)
	statusUnsupported        // a link type this package does not decode
	statusMalformed          // headers that contradict themselves
	statusTruncated          // cut (by snaplen) before the fields the meter needs
)

// decoded is what decode extracts from a frame.
type decoded struct {
	pkt meter.Packet
	// payload is the UDP payload (as much as was captured) when pkt is a
	// UDP packet whose ports were read; nil otherwise.
	payload []byte
}

// EtherTypes.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	etherQinQv1 = 0x9100
)

// decode parses one captured frame of the given link type. wire is the
// frame's length on the wire (at least len(b)). Only d.pkt.Time is left for
// the caller to fill. It never panics, whatever b holds.
func decode(link uint32, b []byte, wire uint32, d *decoded) status {
	wire = max(wire, uint32(len(b)))
	var off int
	var version int // 4 or 6; 0: read it from the IP header
	switch link {
	case LinkEthernet:
		if len(b) < 14 {
			return statusTruncated
		}
		return ether(b, 12, 14, wire, d)
	case LinkSLL:
		if len(b) < 16 {
			return statusTruncated
		}
		return ether(b, 14, 16, wire, d)
	case LinkSLL2:
		if len(b) < 20 {
			return statusTruncated
		}
		return ether(b, 0, 20, wire, d)
	case LinkRaw, LinkRawOld:
		off = 0
	case LinkIPv4:
		version = 4
	case LinkIPv6:
		version = 6
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return statusTruncated
		}
		af := binary.BigEndian.Uint32(b)
		if link == LinkNull && af > 0xffff {
			af = binary.LittleEndian.Uint32(b) // written in the capturing host's order
		}
		switch af {
		case 2:
			version = 4
		case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
			version = 6
		default:
			return statusNonIP
		}
		off = 4
	default:
		return statusUnsupported
	}
	return ip(b[off:], version, wire-uint32(off), d)
}

// ether follows the EtherType at b[et:] past any VLAN tags to the IP header.
func ether(b []byte, et, off int, wire uint32, d *decoded) status {
	t := binary.BigEndian.Uint16(b[et:])
	for t == etherVLAN || t == etherQinQ || t == etherQinQv1 {
		if len(b) < off+4 {
			return statusTruncated
		}
		t = binary.BigEndian.Uint16(b[off+2:])
		off += 4
	}
	switch t {
	case etherIPv4:
		return ip(b[off:], 4, wire-uint32(off), d)
	case etherIPv6:
		return ip(b[off:], 6, wire-uint32(off), d)
	}
	return statusNonIP
}

// ip decodes an IPv4 or IPv6 header and the transport header after it.
// wire is the IP packet's length on the wire as far as the link layer
// knows; it stands in for an IP length of 0 (TCP segmentation offload,
// IPv6 jumbograms).
func ip(b []byte, version int, wire uint32, d *decoded) status {
	if len(b) < 1 {
		return statusTruncated
	}
	if version == 0 {
		version = int(b[0] >> 4)
	}
	d.payload = nil
	switch version {
	case 4:
		return ip4(b, wire, d)
	case 6:
		return ip6(b, wire, d)
	}
	return statusMalformed
}

func ip4(b []byte, wire uint32, d *decoded) status {
	if len(b) < 20 {
		return statusTruncated
	}
	if b[0]>>4 != 4 {
		return statusMalformed
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 {
		return statusMalformed
	}
	if len(b) < hl {
		return statusTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	switch {
	case total == 0:
		total = int(wire)
	case total < hl:
		return statusMalformed
	}
	p := &d.pkt
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.Proto = b[9]
	p.Length = uint32(total)
	p.SrcPort, p.DstPort, p.TCPFlags = 0, 0, 0
	if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		return statusOK // a later fragment: no transport header
	}
	l4 := b[hl:]
	if total < len(b) {
		l4 = b[hl:total] // drop link-layer padding
	}
	return transport(l4, d)
}

func ip6(b []byte, wire uint32, d *decoded) status {
	if len(b) < 40 {
		return statusTruncated
	}
	if b[0]>>4 != 6 {
		return statusMalformed
	}
	p := &d.pkt
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.SrcPort, p.DstPort, p.TCPFlags = 0, 0, 0
	plen := int(binary.BigEndian.Uint16(b[4:]))
	total := plen + 40
	if plen == 0 {
		total = int(wire) // jumbogram or offload: trust the frame
	} else if total < len(b) {
		b = b[:total] // drop link-layer padding
	}
	p.Length = uint32(total)
	next, off := b[6], 40
	// Walk the extension headers (a bounded number of them) to the
	// upper-layer protocol, which is what flows are keyed by.
	for range 8 {
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if len(b) < off+2 {
				return statusTruncated
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
			continue
		case 51: // authentication header
			if len(b) < off+2 {
				return statusTruncated
			}
			next, off = b[off], off+(int(b[off+1])+2)*4
			continue
		case 44: // fragment
			if len(b) < off+8 {
				return statusTruncated
			}
			later := binary.BigEndian.Uint16(b[off+2:])>>3 != 0
			next, off = b[off], off+8
			if later {
				p.Proto = next
				return statusOK
			}
			continue
		}
		break
	}
	p.Proto = next
	if off > len(b) {
		if off > total {
			return statusMalformed
		}
		return statusTruncated
	}
	return transport(b[off:], d)
}

// transport reads ports (or ICMP type and code) and TCP flags.
func transport(b []byte, d *decoded) status {
	p := &d.pkt
	switch p.Proto {
	case flow.ProtoTCP:
		if len(b) < 4 {
			return statusTruncated
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		if len(b) >= 14 {
			p.TCPFlags = b[13]
		}
	case flow.ProtoUDP:
		if len(b) < 4 {
			return statusTruncated
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		if len(b) >= 8 {
			payload := b[8:]
			if n := int(binary.BigEndian.Uint16(b[4:])) - 8; n >= 0 && n < len(payload) {
				payload = payload[:n]
			}
			d.payload = payload
		}
	case flow.ProtoSCTP, 33, 136: // SCTP, DCCP, UDP-Lite
		if len(b) < 4 {
			return statusTruncated
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if len(b) < 2 {
			return statusTruncated
		}
		p.DstPort = uint16(b[0])<<8 | uint16(b[1])
	}
	return statusOK
}
