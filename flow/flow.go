// Package flow defines Flow, the one record that crosses every boundary of
// flowguard: ingest sources produce it, enrichers fill it, the engine and the
// rules read it, and alerts carry samples of it.
//
// Field names (the `expr` and `json` tags) are a contract: users write them in
// rules and group_by lists and see them in alerts. They follow goflow2's JSON
// output where one exists.
package flow

import (
	"net/netip"
	"time"
)

// Exporter types, the values of Flow.Type.
const (
	TypeNetFlowV1 = "NETFLOW_V1"
	TypeNetFlowV5 = "NETFLOW_V5"
	TypeNetFlowV7 = "NETFLOW_V7"
	TypeNetFlowV8 = "NETFLOW_V8"
	TypeNetFlowV9 = "NETFLOW_V9"
	TypeIPFIX     = "IPFIX"
	TypeSFlow5    = "SFLOW_5"
	TypePcap      = "PCAP"
	TypeCapture   = "CAPTURE"
	TypeFile      = "FILE"
)

// Direction values, relative to the internal networks.
const (
	DirectionInbound  = "inbound"  // external source, internal destination
	DirectionOutbound = "outbound" // internal source, external destination
	DirectionInternal = "internal" // both internal
	DirectionExternal = "external" // neither internal
)

// IP protocol numbers used often enough to name.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
	ProtoGRE    = 47
	ProtoESP    = 50
)

// TCP flag bits as carried in tcp_flags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
	TCPEce = 0x40
	TCPCwr = 0x80
)

// Flow is one unidirectional flow record. Bytes and Packets are already
// multiplied by SamplingRate; RawBytes and RawPackets keep what the exporter
// sent. Zero values mean "not known" (an invalid netip.Addr, a zero time).
type Flow struct {
	// Exporter.
	Type           string     `expr:"type" json:"type"`
	SamplerAddress netip.Addr `expr:"sampler_address" json:"sampler_address,omitzero"`
	SequenceNum    uint32     `expr:"sequence_num" json:"sequence_num,omitzero"`
	SamplingRate   uint32     `expr:"sampling_rate" json:"sampling_rate,omitzero"`
	InIf           uint32     `expr:"in_if" json:"in_if,omitzero"`
	OutIf          uint32     `expr:"out_if" json:"out_if,omitzero"`
	// Names of the exporter and its interfaces, from the configuration.
	ExporterName string `expr:"exporter_name" json:"exporter_name,omitzero"`
	InIfName     string `expr:"in_if_name" json:"in_if_name,omitzero"`
	OutIfName    string `expr:"out_if_name" json:"out_if_name,omitzero"`

	// Time.
	TimeReceived  time.Time `expr:"time_received" json:"time_received,omitzero"`
	TimeFlowStart time.Time `expr:"time_flow_start" json:"time_flow_start,omitzero"`
	TimeFlowEnd   time.Time `expr:"time_flow_end" json:"time_flow_end,omitzero"`

	// Five-tuple.
	SrcAddr   netip.Addr `expr:"src_addr" json:"src_addr"`
	DstAddr   netip.Addr `expr:"dst_addr" json:"dst_addr"`
	SrcPort   uint16     `expr:"src_port" json:"src_port"`
	DstPort   uint16     `expr:"dst_port" json:"dst_port"`
	Proto     uint8      `expr:"proto" json:"proto"`
	ProtoName string     `expr:"proto_name" json:"proto_name"`
	TCPFlags  uint8      `expr:"tcp_flags" json:"tcp_flags,omitzero"`
	SYN       bool       `expr:"syn" json:"syn,omitzero"`
	ACK       bool       `expr:"ack" json:"ack,omitzero"`
	FIN       bool       `expr:"fin" json:"fin,omitzero"`
	RST       bool       `expr:"rst" json:"rst,omitzero"`

	// Volume.
	Bytes      uint64 `expr:"bytes" json:"bytes"`
	Packets    uint64 `expr:"packets" json:"packets"`
	RawBytes   uint64 `expr:"raw_bytes" json:"raw_bytes,omitzero"`
	RawPackets uint64 `expr:"raw_packets" json:"raw_packets,omitzero"`

	// Routing, where the exporter gives it.
	SrcAS   uint32       `expr:"src_as" json:"src_as,omitzero"`
	DstAS   uint32       `expr:"dst_as" json:"dst_as,omitzero"`
	NextHop netip.Addr   `expr:"next_hop" json:"next_hop,omitzero"`
	SrcNet  netip.Prefix `expr:"src_net" json:"src_net,omitzero"`
	DstNet  netip.Prefix `expr:"dst_net" json:"dst_net,omitzero"`

	// Enrichment.
	SrcCountry  string   `expr:"src_country" json:"src_country,omitzero"`
	SrcCity     string   `expr:"src_city" json:"src_city,omitzero"`
	SrcASN      uint32   `expr:"src_asn" json:"src_asn,omitzero"`
	SrcASOrg    string   `expr:"src_as_org" json:"src_as_org,omitzero"`
	SrcInternal bool     `expr:"src_internal" json:"src_internal,omitzero"`
	SrcNetwork  string   `expr:"src_network" json:"src_network,omitzero"`
	SrcLists    []string `expr:"src_lists" json:"src_lists,omitzero"`
	DstCountry  string   `expr:"dst_country" json:"dst_country,omitzero"`
	DstCity     string   `expr:"dst_city" json:"dst_city,omitzero"`
	DstASN      uint32   `expr:"dst_asn" json:"dst_asn,omitzero"`
	DstASOrg    string   `expr:"dst_as_org" json:"dst_as_org,omitzero"`
	DstInternal bool     `expr:"dst_internal" json:"dst_internal,omitzero"`
	DstNetwork  string   `expr:"dst_network" json:"dst_network,omitzero"`
	DstLists    []string `expr:"dst_lists" json:"dst_lists,omitzero"`
	Direction   string   `expr:"direction" json:"direction,omitzero"`
}

// EventTime is the time that drives windows: the flow's end, else its
// start, else when it was received.
func (f *Flow) EventTime() time.Time {
	switch {
	case !f.TimeFlowEnd.IsZero():
		return f.TimeFlowEnd
	case !f.TimeFlowStart.IsZero():
		return f.TimeFlowStart
	default:
		return f.TimeReceived
	}
}

// SetTCPFlags stores flags and the derived syn/ack/fin/rst booleans.
func (f *Flow) SetTCPFlags(flags uint8) {
	f.TCPFlags = flags
	f.SYN = flags&TCPSyn != 0
	f.ACK = flags&TCPAck != 0
	f.FIN = flags&TCPFin != 0
	f.RST = flags&TCPRst != 0
}

// SetProto stores the protocol number and its name.
func (f *Flow) SetProto(p uint8) {
	f.Proto = p
	f.ProtoName = ProtoName(p)
}

// Renormalise sets Bytes and Packets from the raw counters and the sampling
// rate (a rate of 0 counts as 1).
func (f *Flow) Renormalise() {
	rate := uint64(f.SamplingRate)
	if rate == 0 {
		rate = 1
	}
	f.Bytes = f.RawBytes * rate
	f.Packets = f.RawPackets * rate
}

var protoNames = [256]string{
	0: "hopopt", 1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 8: "egp", 17: "udp",
	41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 46: "rsvp", 47: "gre", 50: "esp",
	51: "ah", 58: "icmpv6", 59: "ipv6-nonxt", 60: "ipv6-opts", 88: "eigrp", 89: "ospf",
	103: "pim", 112: "vrrp", 115: "l2tp", 132: "sctp", 136: "udplite", 137: "mpls-in-ip",
}

// ProtoName returns the lower-case IANA keyword for an IP protocol number,
// or its decimal form when it has none that flowguard knows.
func ProtoName(p uint8) string {
	if n := protoNames[p]; n != "" {
		return n
	}
	return protoNumbers[p]
}

var protoNumbers [256]string

func init() {
	for i := range protoNumbers {
		protoNumbers[i] = itoa(i)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [4]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// ProtoNumber returns the number for a protocol name ("tcp" → 6) and
// whether it is known.
func ProtoNumber(name string) (uint8, bool) {
	for i, n := range protoNames {
		if n != "" && n == name {
			return uint8(i), true
		}
	}
	return 0, false
}
