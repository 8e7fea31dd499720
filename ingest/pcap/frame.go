package pcap

import "github.com/flowguard/flowguard/ingest/meter"

// FrameResult says what DecodeFrame made of a frame.
type FrameResult uint8

// Frame results.
const (
	FrameOK          FrameResult = FrameResult(statusOK)          // pkt is filled
	FrameNonIP       FrameResult = FrameResult(statusNonIP)       // ARP, LLDP and the like
	FrameUnsupported FrameResult = FrameResult(statusUnsupported) // unknown link type
	FrameMalformed   FrameResult = FrameResult(statusMalformed)   // contradictory headers
	FrameTruncated   FrameResult = FrameResult(statusTruncated)   // cut before the needed fields
)

// DecodeFrame parses one frame of a link type (LinkEthernet, LinkSLL, ...)
// into pkt, for sources other than files (live capture). wire is the
// frame's length on the wire. pkt.Time is left to the caller. For UDP the
// payload (as captured) is returned too. It never panics.
func DecodeFrame(link uint32, b []byte, wire uint32, pkt *meter.Packet) ([]byte, FrameResult) {
	var d decoded
	st := decode(link, b, wire, &d)
	*pkt = d.pkt
	return d.payload, FrameResult(st)
}
