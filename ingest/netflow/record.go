package netflow

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// op is what to do with one field of a v9 / IPFIX record.
type op uint8

const (
	opSkip op = iota
	opSrcAddr4
	opDstAddr4
	opSrcAddr6
	opDstAddr6
	opSrcPort
	opDstPort
	opProto
	opTCPFlags
	opBytes      // 1 octetDeltaCount / IN_BYTES
	opPackets    // 2 packetDeltaCount / IN_PKTS
	opPostBytes  // 23 postOctetDeltaCount / OUT_BYTES
	opPostPkts   // 24 postPacketDeltaCount / OUT_PKTS
	opTotalBytes // 85 octetTotalCount
	opTotalPkts  // 86 packetTotalCount
	opInIf
	opOutIf
	opSrcAS
	opDstAS
	opNextHop4    // 15
	opNextHop6    // 62
	opBGPNextHop4 // 18
	opBGPNextHop6 // 63
	opSrcMask     // 9, 29
	opDstMask     // 13, 30
	opICMPTypeCode
	opICMPType
	opICMPCode
	opFirstSwitched // 22, ms of system uptime
	opLastSwitched  // 21
	opStartSec      // 150
	opEndSec        // 151
	opStartMs       // 152
	opEndMs         // 153
	opStartUs       // 154, NTP format
	opEndUs         // 155
	opStartNs       // 156, NTP format
	opEndNs         // 157
	opStartDeltaUs  // 158
	opEndDeltaUs    // 159
	opSysInitMs     // 160
	opDurationMs    // 161
	opDurationUs    // 162
	opSamplingInterval
	opSamplerRandom
	opPacketInterval
	opPacketSpace
	opSamplerID // 48 samplerId / FLOW_SAMPLER_ID, 302 selectorId
)

// opFor maps an information element (v9 field type) of the given length
// to its op; fields of an unexpected size are skipped.
func opFor(typ, length uint16) op {
	num := length >= 1 && length <= 8
	switch typ {
	case 8:
		return addrOp(opSrcAddr4, length, 4)
	case 12:
		return addrOp(opDstAddr4, length, 4)
	case 27:
		return addrOp(opSrcAddr6, length, 16)
	case 28:
		return addrOp(opDstAddr6, length, 16)
	case 15:
		return addrOp(opNextHop4, length, 4)
	case 62:
		return addrOp(opNextHop6, length, 16)
	case 18:
		return addrOp(opBGPNextHop4, length, 4)
	case 63:
		return addrOp(opBGPNextHop6, length, 16)
	}
	if !num {
		return opSkip
	}
	switch typ {
	case 7:
		return opSrcPort
	case 11:
		return opDstPort
	case 4:
		return opProto
	case 6:
		return opTCPFlags
	case 1:
		return opBytes
	case 2:
		return opPackets
	case 23:
		return opPostBytes
	case 24:
		return opPostPkts
	case 85:
		return opTotalBytes
	case 86:
		return opTotalPkts
	case 10:
		return opInIf
	case 14:
		return opOutIf
	case 16:
		return opSrcAS
	case 17:
		return opDstAS
	case 9, 29:
		return opSrcMask
	case 13, 30:
		return opDstMask
	case 32, 139:
		return opICMPTypeCode
	case 176, 178:
		return opICMPType
	case 177, 179:
		return opICMPCode
	case 22:
		return opFirstSwitched
	case 21:
		return opLastSwitched
	case 150:
		return opStartSec
	case 151:
		return opEndSec
	case 152:
		return opStartMs
	case 153:
		return opEndMs
	case 154:
		return opStartUs
	case 155:
		return opEndUs
	case 156:
		return opStartNs
	case 157:
		return opEndNs
	case 158:
		return opStartDeltaUs
	case 159:
		return opEndDeltaUs
	case 160:
		return opSysInitMs
	case 161:
		return opDurationMs
	case 162:
		return opDurationUs
	case 34:
		return opSamplingInterval
	case 50:
		return opSamplerRandom
	case 305:
		return opPacketInterval
	case 306:
		return opPacketSpace
	case 48, 302:
		return opSamplerID
	}
	return opSkip
}

func addrOp(o op, length, want uint16) op {
	if length != want {
		return opSkip
	}
	return o
}

// has bits: which fields a record carried.
const (
	hasSrcPort uint32 = 1 << iota
	hasDstPort
	hasBytes
	hasPackets
	hasPostBytes
	hasPostPkts
	hasTotalBytes
	hasTotalPkts
	hasICMP
	hasICMPType
	hasFirst
	hasLast
	hasStartDelta
	hasEndDelta
	hasSysInit
	hasDuration
	hasSamplerID
)

// recState collects the fields of one record that need the whole record
// (or the header) before they can be stored in the flow.
type recState struct {
	has                      uint32
	src4, dst4, src6, dst6   netip.Addr
	nh4, nh6, bgp4, bgp6     netip.Addr
	srcMask, dstMask         uint8
	bytes, postBytes, total  uint64
	pkts, postPkts, totalPkt uint64
	icmp                     uint16
	first, last              uint32 // ms of system uptime
	startNs, endNs           int64  // absolute, 0 unknown
	startDeltaUs, endDeltaUs uint64
	sysInitMs                int64
	durationNs               int64
	interval, random         uint64
	pktInterval, pktSpace    uint64
	samplerID                uint64
}

// be reads an unsigned big-endian number of 1 to 8 bytes (reduced-size
// encoding, RFC 7011 §6.2).
func be(v []byte) uint64 {
	switch len(v) {
	case 1:
		return uint64(v[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(v))
	case 4:
		return uint64(binary.BigEndian.Uint32(v))
	case 8:
		return binary.BigEndian.Uint64(v)
	}
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

// ntpEpochOffset is the seconds from 1900-01-01 (NTP) to 1970-01-01.
const ntpEpochOffset = 2208988800

// ntp converts an NTP-format timestamp (dateTimeMicroseconds and
// dateTimeNanoseconds, RFC 7011 §6.1.9-10) to Unix nanoseconds.
func ntp(v uint64) int64 {
	sec := int64(v>>32) - ntpEpochOffset
	frac := ((v&0xFFFFFFFF)*1e9 + 1<<31) >> 32 // rounded: exporters convert from ns or µs
	return sec*1e9 + int64(frac)
}

// apply stores the value v of a field with op o.
func (st *recState) apply(o op, v []byte, f *flow.Flow) {
	switch o {
	case opSrcAddr4:
		st.src4 = netip.AddrFrom4([4]byte(v))
	case opDstAddr4:
		st.dst4 = netip.AddrFrom4([4]byte(v))
	case opSrcAddr6:
		st.src6 = netip.AddrFrom16([16]byte(v))
	case opDstAddr6:
		st.dst6 = netip.AddrFrom16([16]byte(v))
	case opSrcPort:
		f.SrcPort = uint16(be(v))
		st.has |= hasSrcPort
	case opDstPort:
		f.DstPort = uint16(be(v))
		st.has |= hasDstPort
	case opProto:
		f.Proto = uint8(be(v))
	case opTCPFlags:
		f.TCPFlags = uint8(be(v)) // tcpControlBits may be 2 bytes; the low byte holds the classic flags
	case opBytes:
		st.bytes += be(v)
		st.has |= hasBytes
	case opPackets:
		st.pkts += be(v)
		st.has |= hasPackets
	case opPostBytes:
		st.postBytes = be(v)
		st.has |= hasPostBytes
	case opPostPkts:
		st.postPkts = be(v)
		st.has |= hasPostPkts
	case opTotalBytes:
		st.total = be(v)
		st.has |= hasTotalBytes
	case opTotalPkts:
		st.totalPkt = be(v)
		st.has |= hasTotalPkts
	case opInIf:
		f.InIf = uint32(be(v))
	case opOutIf:
		f.OutIf = uint32(be(v))
	case opSrcAS:
		f.SrcAS = uint32(be(v))
	case opDstAS:
		f.DstAS = uint32(be(v))
	case opNextHop4:
		st.nh4 = netip.AddrFrom4([4]byte(v))
	case opNextHop6:
		st.nh6 = netip.AddrFrom16([16]byte(v))
	case opBGPNextHop4:
		st.bgp4 = netip.AddrFrom4([4]byte(v))
	case opBGPNextHop6:
		st.bgp6 = netip.AddrFrom16([16]byte(v))
	case opSrcMask:
		if m := uint8(be(v)); m != 0 {
			st.srcMask = m
		}
	case opDstMask:
		if m := uint8(be(v)); m != 0 {
			st.dstMask = m
		}
	case opICMPTypeCode:
		st.icmp = uint16(be(v))
		st.has |= hasICMP
	case opICMPType:
		st.icmp = st.icmp&0xFF | uint16(be(v))<<8
		st.has |= hasICMPType
	case opICMPCode:
		st.icmp = st.icmp&0xFF00 | uint16(be(v))&0xFF
		st.has |= hasICMPType
	case opFirstSwitched:
		st.first = uint32(be(v))
		st.has |= hasFirst
	case opLastSwitched:
		st.last = uint32(be(v))
		st.has |= hasLast
	case opStartSec:
		st.startNs = int64(be(v)) * 1e9
	case opEndSec:
		st.endNs = int64(be(v)) * 1e9
	case opStartMs:
		st.startNs = int64(be(v)) * 1e6
	case opEndMs:
		st.endNs = int64(be(v)) * 1e6
	case opStartUs, opStartNs:
		if len(v) == 8 {
			st.startNs = ntp(be(v))
		}
	case opEndUs, opEndNs:
		if len(v) == 8 {
			st.endNs = ntp(be(v))
		}
	case opStartDeltaUs:
		st.startDeltaUs = be(v)
		st.has |= hasStartDelta
	case opEndDeltaUs:
		st.endDeltaUs = be(v)
		st.has |= hasEndDelta
	case opSysInitMs:
		st.sysInitMs = int64(be(v))
		st.has |= hasSysInit
	case opDurationMs:
		st.durationNs = int64(be(v)) * 1e6
		st.has |= hasDuration
	case opDurationUs:
		st.durationNs = int64(be(v)) * 1e3
		st.has |= hasDuration
	case opSamplingInterval:
		st.interval = be(v)
	case opSamplerRandom:
		st.random = be(v)
	case opPacketInterval:
		st.pktInterval = be(v)
	case opPacketSpace:
		st.pktSpace = be(v)
	case opSamplerID:
		st.samplerID = be(v)
		st.has |= hasSamplerID
	}
}

// fixedKind is how applyFixed reads a field of a fixed-length record: the
// fields of the common flow templates, by op and size, read in place with
// one bounds check; fkApply, any other, through apply.
type fixedKind uint8

const (
	fkApply fixedKind = iota
	fkSrcAddr4
	fkDstAddr4
	fkNextHop4
	fkProto8
	fkTCPFlags8
	fkTCPFlags16
	fkSrcMask8
	fkDstMask8
	fkSrcPort16
	fkDstPort16
	fkInIf16
	fkOutIf16
	fkSrcAS16
	fkDstAS16
	fkInIf32
	fkOutIf32
	fkSrcAS32
	fkDstAS32
	fkBytes32
	fkPackets32
	fkFirst32
	fkLast32
	fkBytes64
	fkPackets64
	fkStartMs64
	fkEndMs64
)

// fixedKinds maps an op to its kinds by size: 1, 2, 4 and 8 bytes.
var fixedKinds = [...][4]fixedKind{
	opSrcAddr4:      {2: fkSrcAddr4},
	opDstAddr4:      {2: fkDstAddr4},
	opNextHop4:      {2: fkNextHop4},
	opProto:         {0: fkProto8},
	opTCPFlags:      {0: fkTCPFlags8, 1: fkTCPFlags16},
	opSrcMask:       {0: fkSrcMask8},
	opDstMask:       {0: fkDstMask8},
	opSrcPort:       {1: fkSrcPort16},
	opDstPort:       {1: fkDstPort16},
	opInIf:          {1: fkInIf16, 2: fkInIf32},
	opOutIf:         {1: fkOutIf16, 2: fkOutIf32},
	opSrcAS:         {1: fkSrcAS16, 2: fkSrcAS32},
	opDstAS:         {1: fkDstAS16, 2: fkDstAS32},
	opBytes:         {2: fkBytes32, 3: fkBytes64},
	opPackets:       {2: fkPackets32, 3: fkPackets64},
	opFirstSwitched: {2: fkFirst32},
	opLastSwitched:  {2: fkLast32},
	opStartMs:       {3: fkStartMs64},
	opEndMs:         {3: fkEndMs64},
}

// fixedKindOf returns the kind of a field with op o and length n.
func fixedKindOf(o op, n uint16) fixedKind {
	if int(o) >= len(fixedKinds) {
		return fkApply
	}
	switch n {
	case 1:
		return fixedKinds[o][0]
	case 2:
		return fixedKinds[o][1]
	case 4:
		return fixedKinds[o][2]
	case 8:
		return fixedKinds[o][3]
	}
	return fkApply
}

// applyFixed applies the fields of a fixed-length record: apply's work,
// with the fields of the common flow templates (addresses, ports,
// counters, interfaces, AS numbers, uptime times) read in place by their
// kind rather than through a call per field. Each fo lies within rec
// (compile checks that the offsets add up to the record length).
func (st *recState) applyFixed(fixed []fixedOp, rec []byte, f *flow.Flow) {
	for _, fo := range fixed {
		o := int(fo.off) // each read slices rec[o:o+size]: one bounds check
		switch fo.kind {
		case fkSrcAddr4:
			st.src4 = netip.AddrFrom4([4]byte(rec[o : o+4]))
		case fkDstAddr4:
			st.dst4 = netip.AddrFrom4([4]byte(rec[o : o+4]))
		case fkNextHop4:
			st.nh4 = netip.AddrFrom4([4]byte(rec[o : o+4]))
		case fkProto8:
			f.Proto = rec[o]
		case fkTCPFlags8:
			f.TCPFlags = rec[o]
		case fkTCPFlags16:
			f.TCPFlags = rec[o+1] // the low byte holds the classic flags
		case fkSrcMask8:
			if m := rec[o]; m != 0 {
				st.srcMask = m
			}
		case fkDstMask8:
			if m := rec[o]; m != 0 {
				st.dstMask = m
			}
		case fkSrcPort16:
			f.SrcPort = binary.BigEndian.Uint16(rec[o : o+2])
			st.has |= hasSrcPort
		case fkDstPort16:
			f.DstPort = binary.BigEndian.Uint16(rec[o : o+2])
			st.has |= hasDstPort
		case fkInIf16:
			f.InIf = uint32(binary.BigEndian.Uint16(rec[o : o+2]))
		case fkOutIf16:
			f.OutIf = uint32(binary.BigEndian.Uint16(rec[o : o+2]))
		case fkSrcAS16:
			f.SrcAS = uint32(binary.BigEndian.Uint16(rec[o : o+2]))
		case fkDstAS16:
			f.DstAS = uint32(binary.BigEndian.Uint16(rec[o : o+2]))
		case fkInIf32:
			f.InIf = binary.BigEndian.Uint32(rec[o : o+4])
		case fkOutIf32:
			f.OutIf = binary.BigEndian.Uint32(rec[o : o+4])
		case fkSrcAS32:
			f.SrcAS = binary.BigEndian.Uint32(rec[o : o+4])
		case fkDstAS32:
			f.DstAS = binary.BigEndian.Uint32(rec[o : o+4])
		case fkBytes32:
			st.bytes += uint64(binary.BigEndian.Uint32(rec[o : o+4]))
			st.has |= hasBytes
		case fkPackets32:
			st.pkts += uint64(binary.BigEndian.Uint32(rec[o : o+4]))
			st.has |= hasPackets
		case fkFirst32:
			st.first = binary.BigEndian.Uint32(rec[o : o+4])
			st.has |= hasFirst
		case fkLast32:
			st.last = binary.BigEndian.Uint32(rec[o : o+4])
			st.has |= hasLast
		case fkBytes64:
			st.bytes += binary.BigEndian.Uint64(rec[o : o+8])
			st.has |= hasBytes
		case fkPackets64:
			st.pkts += binary.BigEndian.Uint64(rec[o : o+8])
			st.has |= hasPackets
		case fkStartMs64:
			st.startNs = int64(binary.BigEndian.Uint64(rec[o:o+8])) * 1e6
		case fkEndMs64:
			st.endNs = int64(binary.BigEndian.Uint64(rec[o:o+8])) * 1e6
		default:
			st.apply(fo.op, rec[o:o+int(fo.len)], f)
		}
	}
}

// recordRate is the sampling rate a record (data or options) states
// itself, 0 when none.
func (st *recState) recordRate() uint32 {
	switch {
	case st.pktInterval != 0:
		return clampRate((st.pktInterval + st.pktSpace) / st.pktInterval)
	case st.interval != 0:
		return clampRate(st.interval)
	case st.random != 0:
		return clampRate(st.random)
	}
	return 0
}

func clampRate(r uint64) uint32 {
	if r > 1<<31 {
		return 1 << 31
	}
	return uint32(r)
}

// header is what a data set's records need from their datagram.
type header struct {
	version   uint16
	unixSecs  uint32 // export time
	unixNsecs uint32 // v5/v7/v8 only
	sysUptime uint32 // ms; v9 (and legacy)
	seq       uint32
	now       time.Time
	nowNs     int64
	shift     int64 // ns added to flow times: the exporter's clock correction
}

// exportNs returns the export time in Unix nanoseconds.
func (h *header) exportNs() int64 {
	return int64(h.unixSecs)*1e9 + int64(h.unixNsecs)
}

// uptimeNs converts a v9/v5 sysUptime-relative time (ms) to Unix
// nanoseconds: the header says the exporter had been up sysUptime ms at
// export time. The difference is taken modulo 2^32 so that an uptime that
// wrapped (49.7 days) between the two still converts.
func (h *header) uptimeNs(ms uint32) int64 {
	return h.exportNs() - int64(int32(h.sysUptime-ms))*1e6
}

// finishRecord moves what st collected into f, and sets times, volume and
// sampling. It returns the rate applied.
func (d *Decoder) finishRecord(f *flow.Flow, st *recState, e *exporter, dm *domain, h *header) {
	f.SrcAddr = pickFast(st.src4, st.src6)
	f.DstAddr = pickFast(st.dst4, st.dst6)
	if nh := pickFast(st.nh4, st.nh6); nh.IsValid() && !nh.IsUnspecified() {
		f.NextHop = nh
	} else if nh := pickFast(st.bgp4, st.bgp6); nh.IsValid() && !nh.IsUnspecified() {
		f.NextHop = nh
	}
	if st.srcMask != 0 && f.SrcAddr.IsValid() {
		f.SrcNet, _ = f.SrcAddr.Prefix(int(st.srcMask))
	}
	if st.dstMask != 0 && f.DstAddr.IsValid() {
		f.DstNet, _ = f.DstAddr.Prefix(int(st.dstMask))
	}
	f.SetProto(f.Proto)
	f.SetTCPFlags(f.TCPFlags)
	if st.has&(hasICMP|hasICMPType) != 0 && (f.Proto == flow.ProtoICMP || f.Proto == flow.ProtoICMPv6) &&
		(st.has&hasDstPort == 0 || f.DstPort == 0) {
		f.DstPort = st.icmp
	}
	switch {
	case st.has&hasBytes != 0:
		f.RawBytes = st.bytes
	case st.has&hasPostBytes != 0:
		f.RawBytes = st.postBytes
	case st.has&hasTotalBytes != 0:
		f.RawBytes = st.total
	}
	switch {
	case st.has&hasPackets != 0:
		f.RawPackets = st.pkts
	case st.has&hasPostPkts != 0:
		f.RawPackets = st.postPkts
	case st.has&hasTotalPkts != 0:
		f.RawPackets = st.totalPkt
	}

	// Times.
	start, end := st.startNs, st.endNs
	if start == 0 || end == 0 {
		var base int64 = -1 // Unix ns at system uptime 0, -1 unknown
		switch {
		case h.version != 10:
			base = h.uptimeNs(0)
		case st.has&hasSysInit != 0:
			base = st.sysInitMs * 1e6
		case dm.sysInitMs != 0:
			base = dm.sysInitMs * 1e6
		}
		if start == 0 {
			switch {
			case st.has&hasFirst != 0 && h.version != 10:
				start = h.uptimeNs(st.first)
			case st.has&hasFirst != 0 && base >= 0:
				start = base + int64(st.first)*1e6
			case st.has&hasStartDelta != 0:
				start = h.exportNs() - int64(st.startDeltaUs)*1e3
			}
		}
		if end == 0 {
			switch {
			case st.has&hasLast != 0 && h.version != 10:
				end = h.uptimeNs(st.last)
			case st.has&hasLast != 0 && base >= 0:
				end = base + int64(st.last)*1e6
			case st.has&hasEndDelta != 0:
				end = h.exportNs() - int64(st.endDeltaUs)*1e3
			case st.has&hasDuration != 0 && start != 0:
				end = start + st.durationNs
			}
		}
	}
	if start != 0 {
		f.TimeFlowStart = time.Unix(0, start+h.shift).UTC()
	}
	if end != 0 {
		f.TimeFlowEnd = time.Unix(0, end+h.shift).UTC()
	}

	// Sampling: what the record says, else its sampler's rate, else the
	// domain's.
	rate := st.recordRate()
	if rate == 0 && st.has&hasSamplerID != 0 {
		rate = dm.samplers[st.samplerID]
	}
	if rate == 0 {
		rate = dm.rate
	}
	rate = d.rate(e, rate)
	typ := flow.TypeNetFlowV9
	if h.version == 10 {
		typ = flow.TypeIPFIX
	}
	finish(f, typ, e, h.seq, rate, h.now)
}

// pickFast is pick, inlined for the common record that carries no IPv6
// address of the kind (a6 not valid: pick gives a4 whatever it is).
func pickFast(a4, a6 netip.Addr) netip.Addr {
	if !a6.IsValid() {
		return a4
	}
	return pick(a4, a6)
}

// pick returns the IPv4 address when it is set and not 0.0.0.0, else the
// IPv6 one when set, else whichever is valid.
func pick(a4, a6 netip.Addr) netip.Addr {
	switch {
	case a4.IsValid() && !a4.IsUnspecified():
		return a4
	case a6.IsValid():
		return a6
	}
	return a4
}

// maxSamplers bounds the sampler ids remembered per domain.
const maxSamplers = 1024

// finishOptions applies an options data record: sampling rates (per
// sampler / selector id when the record names one) and the IPFIX system
// init time.
func finishOptions(st *recState, dm *domain) {
	if r := st.recordRate(); r != 0 {
		if st.has&hasSamplerID != 0 {
			if dm.samplers == nil {
				dm.samplers = make(map[uint64]uint32)
			}
			if _, ok := dm.samplers[st.samplerID]; ok || len(dm.samplers) < maxSamplers {
				dm.samplers[st.samplerID] = r
			}
			if len(dm.samplers) == 1 {
				// One sampler: flows that do not name it use it too.
				dm.rate = r
			}
		} else {
			dm.rate = r
		}
	}
	if st.has&hasSysInit != 0 {
		dm.sysInitMs = st.sysInitMs
	}
}

// dataSet decodes the records of a data set with template t, appending
// flows (data templates) or updating the domain (options templates). It
// returns how many records it decoded.
func (d *Decoder) dataSet(e *exporter, dm *domain, t *template, h *header, set []byte, out []flow.Flow) ([]flow.Flow, int, error) {
	if t.minLen == 0 {
		return out, 0, nil
	}
	st := &d.st
	n := 0
	for len(set) >= t.minLen {
		if d.recsLeft <= 0 {
			d.overCap(t, set)
			return out, n, nil
		}
		d.recsLeft--
		*st = recState{}
		var f *flow.Flow
		if t.options {
			f = &d.scratch
		} else {
			out, f = grow(out)
		}
		if t.recLen != 0 {
			st.applyFixed(t.fixed, set[:t.recLen], f)
			set = set[t.recLen:]
		} else {
			var ok bool
			if set, ok = walk(t, set, st, f); !ok {
				if !t.options {
					out = out[:len(out)-1]
				}
				return out, n, ErrMalformed
			}
		}
		n++
		if t.options {
			*f = flow.Flow{}
			finishOptions(st, dm)
			continue
		}
		d.finishRecord(f, st, e, dm, h)
	}
	return out, n, nil
}

// walk decodes one record of a variable-length template, returning the
// rest of the set.
func walk(t *template, b []byte, st *recState, f *flow.Flow) ([]byte, bool) {
	for _, fl := range t.fields {
		n := int(fl.length)
		if fl.length == varLen {
			if len(b) < 1 {
				return b, false
			}
			n = int(b[0])
			b = b[1:]
			if n == 255 {
				if len(b) < 2 {
					return b, false
				}
				n = int(binary.BigEndian.Uint16(b))
				b = b[2:]
			}
		}
		if n > len(b) {
			return b, false
		}
		if fl.op != opSkip { // variable-length fields are compiled to opSkip
			st.apply(fl.op, b[:n], f)
		}
		b = b[n:]
	}
	return b, true
}
