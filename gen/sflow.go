package gen

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// sflowEncoder writes sFlow v5 datagrams: one flow sample per flow, each
// with one raw packet header record holding a synthesized Ethernet, IPv4
// and TCP or UDP header of the flow's average packet size. A sample
// stands for one packet, times the sampling rate.
type sflowEncoder struct {
	cfg     EncoderConfig
	started bool
	seq     uint32 // datagrams
	samples uint32 // flow samples
	pool    uint32 // packets seen, for sample_pool
	hdr     []byte
}

// Sizes of the parts of a flow sample with one raw header record.
const (
	sflowHeaderLen = 54 // Ethernet + IPv4 + TCP, the most a record holds here
	sflowSampleLen = 8 + 32 + 8 + 16 + sflowHeaderLen + 2
)

func (e *sflowEncoder) Encode(dst []byte, fl []flow.Flow, now time.Time) ([]byte, int) {
	if !e.started {
		e.cfg, e.started = e.cfg.withDefaults(now), true
	}
	start := len(dst)
	dst = be32(dst, 5)
	dst = be32(dst, 1) // agent address: IPv4
	dst = addr4(dst, agent4(e.cfg.Agent))
	dst = be32(dst, e.cfg.SourceID)
	dst = be32(dst, e.seq)
	dst = be32(dst, uptime(now, e.cfg.Boot))
	countAt := len(dst)
	dst = be32(dst, 0) // samples, below
	room := (e.cfg.MaxSize - (len(dst) - start)) / sflowSampleLen
	used, n := 0, 0
	for ; used < len(fl) && n < room; used++ {
		f := &fl[used]
		if !f.SrcAddr.Is4() || !f.DstAddr.Is4() {
			continue
		}
		size := 40
		if f.RawPackets > 0 {
			size = int(min(f.RawBytes/f.RawPackets, 65535))
		}
		size = max(size, 28)
		p := packet{src: f.SrcAddr, dst: f.DstAddr, sport: f.SrcPort, dport: f.DstPort,
			proto: f.Proto, flags: f.TCPFlags, ipLen: uint16(size)}
		var wire int
		e.hdr, wire = appendFrame(e.hdr[:0], &p, uint16(e.samples), sflowHeaderLen)
		if p.proto != 6 && p.proto != 17 {
			e.hdr = e.hdr[:min(len(e.hdr), etherLen+ipv4Len)]
		}
		e.samples++
		e.pool += e.cfg.SamplingRate
		hl := len(e.hdr)
		padded := (hl + 3) &^ 3
		recLen := 16 + padded
		dst = be32(dst, 1) // enterprise 0, format 1: flow sample
		dst = be32(dst, uint32(32+8+recLen))
		dst = be32(dst, e.samples)
		dst = be32(dst, f.InIf&0xffffff) // source id: ifIndex
		dst = be32(dst, e.cfg.SamplingRate)
		dst = be32(dst, e.pool)
		dst = be32(dst, 0) // drops
		dst = be32(dst, f.InIf)
		dst = be32(dst, f.OutIf)
		dst = be32(dst, 1) // records
		dst = be32(dst, 1) // enterprise 0, format 1: raw packet header
		dst = be32(dst, uint32(recLen))
		dst = be32(dst, 1)              // header protocol: Ethernet
		dst = be32(dst, uint32(wire+4)) // frame length, FCS included
		dst = be32(dst, 4)              // stripped: the FCS
		dst = be32(dst, uint32(hl))
		dst = append(dst, e.hdr...)
		for range padded - hl {
			dst = append(dst, 0)
		}
		n++
	}
	binary.BigEndian.PutUint32(dst[countAt:], uint32(n))
	e.seq++
	return dst, max0(used, len(fl))
}

func agent4(a netip.Addr) netip.Addr {
	if a.Is4() {
		return a
	}
	return netip.IPv4Unspecified()
}
