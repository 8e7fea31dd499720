// Package gen makes synthetic traffic for tuning, tests and benchmarks:
// scenario captures (a background of ordinary traffic plus chosen attack
// behaviours, with a ground truth of the alerts they must raise) and flow
// export streams (NetFlow v5, v9, IPFIX, sFlow v5) sent at a given rate.
//
// Everything is derived from a seed: the same configuration gives the same
// bytes. The background is a mix of sessions of internal clients (10.x)
// with outside servers: HTTPS and HTTP fetches, DNS and NTP exchanges and
// interactive SSH sessions, with sizes and pacing drawn from the
// distributions such traffic has (see background.go).
package gen

import (
	"bufio"
	"encoding/binary"
	"io"
	"net/netip"
	"slices"
)

// packet is one IPv4 packet of a generated session. Only its headers are
// kept; the payload is zeros up to the snaplen.
type packet struct {
	ts    int64 // ns since the scenario's start
	src   netip.Addr
	dst   netip.Addr
	sport uint16
	dport uint16
	proto uint8
	flags uint8  // TCP flags
	ipLen uint16 // IP total length, header included
	seq   uint32
	ack   uint32
}

// Header sizes.
const (
	etherLen = 14
	ipv4Len  = 20
	tcpLen   = 20
	udpLen   = 8
)

// appendFrame appends the Ethernet frame of p, cut at snaplen, and returns
// it with the frame's length on the wire.
func appendFrame(dst []byte, p *packet, id uint16, snaplen int) ([]byte, int) {
	wire := etherLen + int(p.ipLen)
	n := min(wire, snaplen)
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	b := dst[start:]
	clear(b)
	var full [etherLen + ipv4Len + tcpLen]byte
	h := full[:]
	// Ethernet: locally administered MACs derived from the addresses.
	s4, d4 := p.src.As4(), p.dst.As4()
	h[0], h[1] = 0x02, 0x00
	copy(h[2:6], d4[:])
	h[6], h[7] = 0x02, 0x00
	copy(h[8:12], s4[:])
	binary.BigEndian.PutUint16(h[12:], 0x0800)
	ip := h[etherLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], p.ipLen)
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	if !isInternal(p.src) {
		ip[8] = 52 // a few hops away
	}
	ip[9] = p.proto
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:ipv4Len]))
	l4 := ip[ipv4Len:]
	hl := etherLen + ipv4Len
	switch p.proto {
	case 6:
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		binary.BigEndian.PutUint32(l4[4:], p.seq)
		binary.BigEndian.PutUint32(l4[8:], p.ack)
		l4[12] = 5 << 4
		l4[13] = p.flags
		binary.BigEndian.PutUint16(l4[14:], 64240)
		hl += tcpLen
	case 17:
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		binary.BigEndian.PutUint16(l4[4:], p.ipLen-ipv4Len)
		hl += udpLen
	}
	copy(b, h[:min(hl, n)])
	return dst, wire
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// isInternal reports whether a is in 10.0.0.0/8, the scenario's internal
// network (a part of the bundled pack's internal_nets).
func isInternal(a netip.Addr) bool {
	return a.Is4() && a.As4()[0] == 10
}

// pcapWriter writes a classic pcap file with nanosecond timestamps and
// Ethernet frames.
type pcapWriter struct {
	w       *bufio.Writer
	snaplen int
	base    int64 // Unix ns of ts 0
	id      uint16
	buf     []byte
	packets uint64
	bytes   uint64 // IP bytes
	err     error
}

func newPcapWriter(w io.Writer, snaplen int, base int64) *pcapWriter {
	pw := &pcapWriter{w: bufio.NewWriterSize(w, 1<<16), snaplen: snaplen, base: base}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d) // nanosecond pcap
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], 1) // LINKTYPE_ETHERNET
	_, pw.err = pw.w.Write(h[:])
	return pw
}

func (pw *pcapWriter) write(p *packet) {
	if pw.err != nil {
		return
	}
	pw.id++
	var wire int
	pw.buf, wire = appendFrame(pw.buf[:0], p, pw.id, pw.snaplen)
	ts := pw.base + p.ts
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(ts/1e9))
	binary.LittleEndian.PutUint32(h[4:], uint32(ts%1e9))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(pw.buf)))
	binary.LittleEndian.PutUint32(h[12:], uint32(wire))
	if _, err := pw.w.Write(h[:]); err != nil {
		pw.err = err
		return
	}
	if _, err := pw.w.Write(pw.buf); err != nil {
		pw.err = err
		return
	}
	pw.packets++
	pw.bytes += uint64(p.ipLen)
}

func (pw *pcapWriter) flush() error {
	if pw.err != nil {
		return pw.err
	}
	return pw.w.Flush()
}
