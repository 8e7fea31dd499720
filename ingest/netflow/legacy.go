package netflow

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// The fixed-layout NetFlow versions (Cisco's "NetFlow Export Datagram
// Format"): a header with sysUptime, the export time in Unix seconds and
// nanoseconds, then records whose first/last switched times are sysUptime
// milliseconds. All numbers are big-endian.
//
//	v1 header (16): version, count, sysUptime, unix_secs, unix_nsecs
//	v5 header (24): ... v1 ..., flow_sequence, engine_type(1), engine_id(1), sampling_interval(2)
//	v7 header (24): ... v1 ..., flow_sequence, reserved(4)
//	v8 header (28): ... v1 ..., flow_sequence, engine_type(1), engine_id(1), aggregation(1), agg_version(1), reserved(4)
//
// v5, v7 and v8 sequence numbers count flow records.

const (
	v1Header, v1Record = 16, 48
	v5Header, v5Record = 24, 48
	v7Header, v7Record = 24, 52
	v8Header           = 28
	legacyMaxCount     = 1024 // far above any exporter's (v5: 30), bounds the work a header can ask for
)

func (d *Decoder) legacyHeader(p []byte, version uint16, now time.Time) header {
	return header{
		shift:     d.shift,
		version:   version,
		sysUptime: binary.BigEndian.Uint32(p[4:]),
		unixSecs:  binary.BigEndian.Uint32(p[8:]),
		unixNsecs: binary.BigEndian.Uint32(p[12:]) % 1e9,
		now:       now,
		nowNs:     now.UnixNano(),
	}
}

// legacyCount checks the record count against the datagram's length.
func legacyCount(p []byte, hdr, rec int) (int, error) {
	if len(p) < hdr {
		return 0, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(p[2:]))
	switch {
	case n == 0 || n > legacyMaxCount:
		return 0, ErrMalformed
	case hdr+n*rec > len(p):
		return 0, ErrTruncated
	}
	return n, nil
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// legacyTimes sets the flow's times from sysUptime-relative first/last.
func legacyTimes(f *flow.Flow, h *header, first, last uint32) {
	f.TimeFlowStart = time.Unix(0, h.uptimeNs(first)+h.shift).UTC()
	f.TimeFlowEnd = time.Unix(0, h.uptimeNs(last)+h.shift).UTC()
}

func setNextHop(f *flow.Flow, b []byte) {
	if nh := addr4(b); !nh.IsUnspecified() {
		f.NextHop = nh
	}
}

func setNets(f *flow.Flow, srcMask, dstMask uint8) {
	if srcMask != 0 && srcMask <= 32 {
		f.SrcNet, _ = f.SrcAddr.Prefix(int(srcMask))
	}
	if dstMask != 0 && dstMask <= 32 {
		f.DstNet, _ = f.DstAddr.Prefix(int(dstMask))
	}
}

func (d *Decoder) legacySeq(e *exporter, slot int, dm *domain, seq uint32, n int) {
	lost, restart := dm.seq.Observe(seq, n)
	s := e.vstats(slot)
	s.lostFlows.Add(lost)
	if restart {
		s.restarts.Add(1)
	}
}

// decodeV1 decodes NetFlow v1. Record (48):
//
//	0 srcaddr  4 dstaddr  8 nexthop  12 input(2)  14 output(2)  16 dPkts  20 dOctets
//	24 First  28 Last  32 srcport(2)  34 dstport(2)  36 pad(2)  38 prot  39 tos
//	40 tcp_flags  41 pad(3)  44 reserved(4)
//
// v1 has no sequence number and no sampling information.
func (d *Decoder) decodeV1(e *exporter, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	n, err := legacyCount(p, v1Header, v1Record)
	if err != nil {
		return out, err
	}
	h := d.legacyHeader(p, 1, now)
	rate := d.rate(e, 0)
	e.vstats(slotV1).samplingRate.Store(rate)
	for i := 0; i < n; i++ {
		r := p[v1Header+i*v1Record:][:v1Record]
		var f *flow.Flow
		out, f = grow(out)
		f.SrcAddr, f.DstAddr = addr4(r[0:]), addr4(r[4:])
		setNextHop(f, r[8:])
		f.InIf, f.OutIf = uint32(binary.BigEndian.Uint16(r[12:])), uint32(binary.BigEndian.Uint16(r[14:]))
		f.RawPackets, f.RawBytes = uint64(binary.BigEndian.Uint32(r[16:])), uint64(binary.BigEndian.Uint32(r[20:]))
		legacyTimes(f, &h, binary.BigEndian.Uint32(r[24:]), binary.BigEndian.Uint32(r[28:]))
		f.SrcPort, f.DstPort = binary.BigEndian.Uint16(r[32:]), binary.BigEndian.Uint16(r[34:])
		f.SetProto(r[38])
		f.SetTCPFlags(r[40])
		finish(f, flow.TypeNetFlowV1, e, 0, rate, now)
	}
	return out, nil
}

// decodeV5 decodes NetFlow v5. Record (48):
//
//	0 srcaddr  4 dstaddr  8 nexthop  12 input(2)  14 output(2)  16 dPkts  20 dOctets
//	24 First  28 Last  32 srcport(2)  34 dstport(2)  36 pad1  37 tcp_flags  38 prot
//	39 tos  40 src_as(2)  42 dst_as(2)  44 src_mask  45 dst_mask  46 pad2(2)
//
// The header's sampling_interval holds the mode in its top 2 bits and the
// interval (the rate) in the low 14.
func (d *Decoder) decodeV5(e *exporter, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	n, err := legacyCount(p, v5Header, v5Record)
	if err != nil {
		return out, err
	}
	h := d.legacyHeader(p, 5, now)
	h.seq = binary.BigEndian.Uint32(p[16:])
	dm := e.domain(domainKey{version: 5, id: uint32(binary.BigEndian.Uint16(p[20:]))}, h.nowNs)
	if interval := binary.BigEndian.Uint16(p[22:]) & 0x3FFF; interval != 0 {
		dm.rate = uint32(interval)
	}
	rate := d.rate(e, dm.rate)
	e.vstats(slotV5).samplingRate.Store(rate)
	for i := 0; i < n; i++ {
		r := p[v5Header+i*v5Record:][:v5Record]
		var f *flow.Flow
		out, f = grow(out)
		v5Fields(f, &h, r)
		finish(f, flow.TypeNetFlowV5, e, h.seq, rate, now)
	}
	d.legacySeq(e, slotV5, dm, h.seq, n)
	return out, nil
}

// v5Fields reads the fields v5 and v7 records share, at the same offsets
// (the first 46 bytes).
func v5Fields(f *flow.Flow, h *header, r []byte) {
	f.SrcAddr, f.DstAddr = addr4(r[0:]), addr4(r[4:])
	setNextHop(f, r[8:])
	f.InIf, f.OutIf = uint32(binary.BigEndian.Uint16(r[12:])), uint32(binary.BigEndian.Uint16(r[14:]))
	f.RawPackets, f.RawBytes = uint64(binary.BigEndian.Uint32(r[16:])), uint64(binary.BigEndian.Uint32(r[20:]))
	legacyTimes(f, h, binary.BigEndian.Uint32(r[24:]), binary.BigEndian.Uint32(r[28:]))
	f.SrcPort, f.DstPort = binary.BigEndian.Uint16(r[32:]), binary.BigEndian.Uint16(r[34:])
	f.SetTCPFlags(r[37])
	f.SetProto(r[38])
	f.SrcAS, f.DstAS = uint32(binary.BigEndian.Uint16(r[40:])), uint32(binary.BigEndian.Uint16(r[42:]))
	setNets(f, r[44], r[45])
}

// decodeV7 decodes NetFlow v7 (Catalyst switches). Record (52): as v5 up
// to dstport, then
//
//	36 flags1  37 tcp_flags  38 prot  39 tos  40 src_as(2)  42 dst_as(2)
//	44 src_mask  45 dst_mask  46 flags2(2)  48 router_sc(4)
func (d *Decoder) decodeV7(e *exporter, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	n, err := legacyCount(p, v7Header, v7Record)
	if err != nil {
		return out, err
	}
	h := d.legacyHeader(p, 7, now)
	h.seq = binary.BigEndian.Uint32(p[16:])
	dm := e.domain(domainKey{version: 7}, h.nowNs)
	rate := d.rate(e, 0)
	e.vstats(slotV7).samplingRate.Store(rate)
	for i := 0; i < n; i++ {
		r := p[v7Header+i*v7Record:][:v7Record]
		var f *flow.Flow
		out, f = grow(out)
		v5Fields(f, &h, r)
		finish(f, flow.TypeNetFlowV7, e, h.seq, rate, now)
	}
	d.legacySeq(e, slotV7, dm, h.seq, n)
	return out, nil
}

// v8 aggregation schemes this decoder reads, and their record sizes. Every
// record starts with
//
//	0 flows  4 dPkts  8 dOctets  12 First  16 Last
//
// then, from byte 20:
//
//	1 AS:                 src_as(2) dst_as(2) input(2) output(2)                          (28)
//	2 protocol-port:      prot(1) pad(1) reserved(2) srcport(2) dstport(2)                (28)
//	3 source prefix:      src_prefix(4) src_mask(1) pad(1) src_as(2) input(2) reserved(2) (32)
//	4 destination prefix: dst_prefix(4) dst_mask(1) pad(1) dst_as(2) output(2) reserved(2) (32)
//	5 prefix:             src_prefix(4) dst_prefix(4) src_mask(1) dst_mask(1) pad(2)
//	                      src_as(2) dst_as(2) input(2) output(2)                          (40)
const (
	v8AS         = 1
	v8ProtoPort  = 2
	v8SrcPrefix  = 3
	v8DstPrefix  = 4
	v8Prefix     = 5
	v8MaxSupport = 5
)

var v8RecordLen = [v8MaxSupport + 1]int{v8AS: 28, v8ProtoPort: 28, v8SrcPrefix: 32, v8DstPrefix: 32, v8Prefix: 40}

// decodeV8 decodes the NetFlow v8 router-based aggregations 1 to 5. A
// record aggregates several flows (its "flows" field); it becomes one
// Flow with the aggregate's packets and bytes. Prefix aggregations give
// src_net / dst_net (the prefix) but no addresses.
func (d *Decoder) decodeV8(e *exporter, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	if len(p) < v8Header {
		return out, ErrTruncated
	}
	agg := p[22]
	if agg == 0 || agg > v8MaxSupport {
		return out, ErrAggregation
	}
	recLen := v8RecordLen[agg]
	n, err := legacyCount(p, v8Header, recLen)
	if err != nil {
		return out, err
	}
	h := d.legacyHeader(p, 8, now)
	h.seq = binary.BigEndian.Uint32(p[16:])
	dm := e.domain(domainKey{version: 8, id: uint32(agg)<<16 | uint32(binary.BigEndian.Uint16(p[20:]))}, h.nowNs)
	rate := d.rate(e, 0)
	e.vstats(slotV8).samplingRate.Store(rate)
	for i := 0; i < n; i++ {
		r := p[v8Header+i*recLen:][:recLen]
		var f *flow.Flow
		out, f = grow(out)
		f.RawPackets, f.RawBytes = uint64(binary.BigEndian.Uint32(r[4:])), uint64(binary.BigEndian.Uint32(r[8:]))
		legacyTimes(f, &h, binary.BigEndian.Uint32(r[12:]), binary.BigEndian.Uint32(r[16:]))
		a := r[20:]
		switch agg {
		case v8AS:
			f.SrcAS, f.DstAS = uint32(binary.BigEndian.Uint16(a[0:])), uint32(binary.BigEndian.Uint16(a[2:]))
			f.InIf, f.OutIf = uint32(binary.BigEndian.Uint16(a[4:])), uint32(binary.BigEndian.Uint16(a[6:]))
		case v8ProtoPort:
			f.SetProto(a[0])
			f.SrcPort, f.DstPort = binary.BigEndian.Uint16(a[4:]), binary.BigEndian.Uint16(a[6:])
		case v8SrcPrefix:
			f.SrcNet = prefix(a[0:], a[4])
			f.SrcAS = uint32(binary.BigEndian.Uint16(a[6:]))
			f.InIf = uint32(binary.BigEndian.Uint16(a[8:]))
		case v8DstPrefix:
			f.DstNet = prefix(a[0:], a[4])
			f.DstAS = uint32(binary.BigEndian.Uint16(a[6:]))
			f.OutIf = uint32(binary.BigEndian.Uint16(a[8:]))
		case v8Prefix:
			f.SrcNet, f.DstNet = prefix(a[0:], a[8]), prefix(a[4:], a[9])
			f.SrcAS, f.DstAS = uint32(binary.BigEndian.Uint16(a[12:])), uint32(binary.BigEndian.Uint16(a[14:]))
			f.InIf, f.OutIf = uint32(binary.BigEndian.Uint16(a[16:])), uint32(binary.BigEndian.Uint16(a[18:]))
		}
		finish(f, flow.TypeNetFlowV8, e, h.seq, rate, now)
	}
	d.legacySeq(e, slotV8, dm, h.seq, n)
	return out, nil
}

// prefix returns the IPv4 prefix at b with mask bits (masked), or the zero
// Prefix for a mask over 32.
func prefix(b []byte, bits uint8) netip.Prefix {
	p, err := addr4(b).Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
