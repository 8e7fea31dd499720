package sflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowguard/flowguard/flow"
)

// parseEthernet decodes the sampled frame's headers into f: Ethernet,
// 802.1Q / 802.1ad / QinQ tags, MPLS labels, then IP. It stops quietly
// where the header was cut (sFlow keeps the first 128 bytes or so).
func parseEthernet(b []byte, f *flow.Flow) {
	if len(b) < 14 {
		return
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	for tags := 0; (et == 0x8100 || et == 0x88A8 || et == 0x9100) && tags < 4; tags++ {
		if len(b) < 4 {
			return
		}
		et = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	switch et {
	case 0x0800, 0x86DD:
		parseIP(b, f)
	case 0x8847, 0x8848: // MPLS: skip to the bottom of the stack, then guess IP by its version
		for labels := 0; labels < 8; labels++ {
			if len(b) < 4 {
				return
			}
			bottom := b[2]&1 != 0
			b = b[4:]
			if bottom {
				parseIP(b, f)
				return
			}
		}
	}
}

// parseIP decodes an IPv4 or IPv6 header and its transport header.
func parseIP(b []byte, f *flow.Flow) {
	if len(b) < 1 {
		return
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return
		}
		ihl := int(b[0]&0x0F) * 4
		if ihl < 20 || len(b) < ihl {
			return
		}
		f.SrcAddr = netip.AddrFrom4([4]byte(b[12:16]))
		f.DstAddr = netip.AddrFrom4([4]byte(b[16:20]))
		f.SetProto(b[9])
		if binary.BigEndian.Uint16(b[6:])&0x1FFF != 0 {
			return // a later fragment: no transport header
		}
		transport(b[ihl:], f)
	case 6:
		if len(b) < 40 {
			return
		}
		f.SrcAddr = netip.AddrFrom16([16]byte(b[8:24]))
		f.DstAddr = netip.AddrFrom16([16]byte(b[24:40]))
		next := b[6]
		b = b[40:]
		for ext := 0; ext < 8; ext++ {
			var n int
			switch next {
			case 0, 43, 60, 135: // hop-by-hop, routing, destination options, mobility
				if len(b) < 2 {
					f.SetProto(next)
					return
				}
				n = (int(b[1]) + 1) * 8
			case 44: // fragment
				if len(b) < 8 {
					f.SetProto(next)
					return
				}
				if binary.BigEndian.Uint16(b[2:])&0xFFF8 != 0 {
					f.SetProto(b[0])
					return
				}
				n = 8
			case 51: // authentication header
				if len(b) < 2 {
					f.SetProto(next)
					return
				}
				n = (int(b[1]) + 2) * 4
			default:
				f.SetProto(next)
				transport(b, f)
				return
			}
			if len(b) < n {
				f.SetProto(next)
				return
			}
			next = b[0]
			b = b[n:]
		}
		f.SetProto(next)
	}
}

// transport reads ports (TCP, UDP, SCTP, UDP-Lite, DCCP), TCP flags, or
// the ICMP type and code (as dst_port = type*256+code).
func transport(b []byte, f *flow.Flow) {
	switch f.Proto {
	case flow.ProtoTCP:
		if len(b) >= 14 {
			f.SetTCPFlags(b[13])
		}
		fallthrough
	case flow.ProtoUDP, flow.ProtoSCTP, 136, 33:
		if len(b) >= 4 {
			f.SrcPort = binary.BigEndian.Uint16(b)
			f.DstPort = binary.BigEndian.Uint16(b[2:])
		}
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if len(b) >= 2 {
			f.DstPort = uint16(b[0])<<8 | uint16(b[1])
		}
	}
}
