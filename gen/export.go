package gen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// Proto is a flow export protocol.
type Proto uint8

// Export protocols.
const (
	NetFlowV5 Proto = iota + 1
	NetFlowV9
	IPFIX
	SFlow5
)

// String names the protocol as the command line spells it.
func (p Proto) String() string {
	switch p {
	case NetFlowV5:
		return "v5"
	case NetFlowV9:
		return "v9"
	case IPFIX:
		return "ipfix"
	case SFlow5:
		return "sflow"
	}
	return "unknown"
}

// ParseProto parses "v5", "v9", "ipfix" or "sflow".
func ParseProto(s string) (Proto, error) {
	for _, p := range []Proto{NetFlowV5, NetFlowV9, IPFIX, SFlow5} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q (want v5, v9, ipfix or sflow)", s)
}

// EncoderConfig configures one exporter's encoder.
type EncoderConfig struct {
	// Boot is when the exporter started: NetFlow v5, v9 and sFlow carry
	// times as milliseconds since then (default: a minute before the first
	// datagram).
	Boot time.Time
	// SourceID is the v9 source id, the IPFIX observation domain and the
	// sFlow sub-agent id.
	SourceID uint32
	// Agent is the sFlow agent address (default 127.0.0.1).
	Agent netip.Addr
	// TemplateEvery is how often v9 and IPFIX resend their template
	// (default 10s); the first datagram always carries it.
	TemplateEvery time.Duration
	// MaxSize caps a datagram's size in bytes (default 1400, at least 256).
	MaxSize int
	// SamplingRate is announced in v5 headers and sFlow samples (default
	// 1: unsampled).
	SamplingRate uint32
}

func (c EncoderConfig) withDefaults(now time.Time) EncoderConfig {
	if c.Boot.IsZero() {
		c.Boot = now.Add(-time.Minute)
	}
	if !c.Agent.IsValid() {
		c.Agent = netip.MustParseAddr("127.0.0.1")
	}
	if c.TemplateEvery <= 0 {
		c.TemplateEvery = 10 * time.Second
	}
	if c.MaxSize == 0 {
		c.MaxSize = 1400
	}
	c.MaxSize = max(c.MaxSize, 256)
	if c.SamplingRate == 0 {
		c.SamplingRate = 1
	}
	return c
}

// Encoder packs flows into the datagrams of one exporter. It is not safe
// for concurrent use.
type Encoder interface {
	// Encode appends one datagram to dst holding flows from the front of
	// fl, and returns it with how many flows of fl it used (at least one
	// when fl is not empty; flows that are not IPv4 are skipped and
	// counted as used). now is the export time.
	Encode(dst []byte, fl []flow.Flow, now time.Time) ([]byte, int)
}

// NewEncoder returns an encoder for the protocol. Flows are exported as
// IPv4 records; v9 and IPFIX send their template in the first datagram
// and every TemplateEvery after.
func NewEncoder(p Proto, cfg EncoderConfig) (Encoder, error) {
	switch p {
	case NetFlowV5:
		return &v5Encoder{cfg: cfg}, nil
	case NetFlowV9:
		return &templateEncoder{cfg: cfg, ipfix: false}, nil
	case IPFIX:
		return &templateEncoder{cfg: cfg, ipfix: true}, nil
	case SFlow5:
		return &sflowEncoder{cfg: cfg}, nil
	}
	return nil, fmt.Errorf("unknown protocol %d", p)
}

// uptime returns t as milliseconds since boot, as NetFlow's sysUptime
// counts (it wraps after 49 days).
func uptime(t, boot time.Time) uint32 {
	return uint32(t.Sub(boot).Milliseconds())
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func addr4(b []byte, a netip.Addr) []byte {
	v := a.As4()
	return append(b, v[:]...)
}

// v5Encoder writes NetFlow v5: a 24-byte header and up to 30 records of
// 48 bytes.
type v5Encoder struct {
	cfg     EncoderConfig
	started bool
	seq     uint32 // flows exported before this datagram
}

const v5MaxRecords = 30

func (e *v5Encoder) Encode(dst []byte, fl []flow.Flow, now time.Time) ([]byte, int) {
	if !e.started {
		e.cfg, e.started = e.cfg.withDefaults(now), true
	}
	limit := min(v5MaxRecords, (e.cfg.MaxSize-24)/48)
	start := len(dst)
	dst = be16(dst, 5)
	dst = be16(dst, 0) // count, below
	dst = be32(dst, uptime(now, e.cfg.Boot))
	dst = be32(dst, uint32(now.Unix()))
	dst = be32(dst, uint32(now.Nanosecond()))
	dst = be32(dst, e.seq)
	dst = append(dst, 0, byte(e.cfg.SourceID))
	sampling := uint16(0)
	if e.cfg.SamplingRate > 1 {
		sampling = 1<<14 | uint16(min(e.cfg.SamplingRate, 0x3fff))
	}
	dst = be16(dst, sampling)
	used, count := 0, 0
	for ; used < len(fl) && count < limit; used++ {
		f := &fl[used]
		if !f.SrcAddr.Is4() || !f.DstAddr.Is4() {
			continue
		}
		dst = addr4(dst, f.SrcAddr)
		dst = addr4(dst, f.DstAddr)
		dst = addr4(dst, nextHop(f))
		dst = be16(dst, uint16(f.InIf))
		dst = be16(dst, uint16(f.OutIf))
		dst = be32(dst, uint32(min(f.RawPackets, 1<<32-1)))
		dst = be32(dst, uint32(min(f.RawBytes, 1<<32-1)))
		dst = be32(dst, uptime(f.TimeFlowStart, e.cfg.Boot))
		dst = be32(dst, uptime(f.TimeFlowEnd, e.cfg.Boot))
		dst = be16(dst, f.SrcPort)
		dst = be16(dst, f.DstPort)
		dst = append(dst, 0, f.TCPFlags, f.Proto, 0)
		dst = be16(dst, uint16(f.SrcAS))
		dst = be16(dst, uint16(f.DstAS))
		dst = append(dst, byte(f.SrcNet.Bits()), byte(f.DstNet.Bits()), 0, 0)
		count++
	}
	binary.BigEndian.PutUint16(dst[start+2:], uint16(count))
	e.seq += uint32(count)
	return dst, max0(used, len(fl))
}

// max0 makes sure a call with flows left reports progress.
func max0(used, n int) int {
	if used == 0 && n > 0 {
		return 1
	}
	return used
}

func nextHop(f *flow.Flow) netip.Addr {
	if f.NextHop.Is4() {
		return f.NextHop
	}
	return netip.IPv4Unspecified()
}

// Information elements of the v9 / IPFIX template (the numbers are the
// same in both: RFC 3954 section 8 and the IANA IPFIX registry).
const (
	ieOctets     = 1
	iePackets    = 2
	ieProto      = 4
	ieTOS        = 5
	ieTCPFlags   = 6
	ieSrcPort    = 7
	ieSrcAddr    = 8
	ieSrcMask    = 9
	ieInIf       = 10
	ieDstPort    = 11
	ieDstAddr    = 12
	ieDstMask    = 13
	ieOutIf      = 14
	ieNextHop    = 15
	ieSrcAS      = 16
	ieDstAS      = 17
	ieLast       = 21  // v9 LAST_SWITCHED, sysUptime ms
	ieFirst      = 22  // v9 FIRST_SWITCHED
	ieStartMilli = 152 // IPFIX flowStartMilliseconds
	ieEndMilli   = 153 // IPFIX flowEndMilliseconds
)

type field struct{ id, size uint16 }

// The data records' layout. tcpControlBits is 2 octets in IPFIX (RFC 7125)
// and 1 in v9.
var (
	v9Fields = []field{
		{ieOctets, 8}, {iePackets, 8}, {ieProto, 1}, {ieTOS, 1}, {ieTCPFlags, 1},
		{ieSrcPort, 2}, {ieSrcAddr, 4}, {ieSrcMask, 1}, {ieInIf, 4}, {ieDstPort, 2},
		{ieDstAddr, 4}, {ieDstMask, 1}, {ieOutIf, 4}, {ieNextHop, 4}, {ieSrcAS, 4},
		{ieDstAS, 4}, {ieLast, 4}, {ieFirst, 4},
	}
	ipfixFields = []field{
		{ieOctets, 8}, {iePackets, 8}, {ieProto, 1}, {ieTOS, 1}, {ieTCPFlags, 2},
		{ieSrcPort, 2}, {ieSrcAddr, 4}, {ieSrcMask, 1}, {ieInIf, 4}, {ieDstPort, 2},
		{ieDstAddr, 4}, {ieDstMask, 1}, {ieOutIf, 4}, {ieNextHop, 4}, {ieSrcAS, 4},
		{ieDstAS, 4}, {ieStartMilli, 8}, {ieEndMilli, 8},
	}
)

// templateID is the id of the one data template.
const templateID = 256

func recordSize(fields []field) int {
	n := 0
	for _, f := range fields {
		n += int(f.size)
	}
	return n
}

// templateEncoder writes NetFlow v9 (RFC 3954) or IPFIX (RFC 7011)
// messages: a header, the template set when due, and one data set.
type templateEncoder struct {
	cfg          EncoderConfig
	ipfix        bool
	started      bool
	lastTemplate time.Time
	packets      uint32 // v9: datagrams sent
	records      uint32 // IPFIX: data records sent
}

func (e *templateEncoder) Encode(dst []byte, fl []flow.Flow, now time.Time) ([]byte, int) {
	if !e.started {
		e.cfg, e.started = e.cfg.withDefaults(now), true
	}
	fields, tmplSet, dataSet := v9Fields, uint16(0), uint16(templateID)
	if e.ipfix {
		fields, tmplSet = ipfixFields, 2
	}
	start := len(dst)
	if e.ipfix {
		dst = be16(dst, 10)
		dst = be16(dst, 0) // length, below
		dst = be32(dst, uint32(now.Unix()))
		dst = be32(dst, e.records)
		dst = be32(dst, e.cfg.SourceID)
	} else {
		dst = be16(dst, 9)
		dst = be16(dst, 0) // record count, below
		dst = be32(dst, uptime(now, e.cfg.Boot))
		dst = be32(dst, uint32(now.Unix()))
		dst = be32(dst, e.packets)
		dst = be32(dst, e.cfg.SourceID)
	}
	count := 0
	if e.lastTemplate.IsZero() || now.Sub(e.lastTemplate) >= e.cfg.TemplateEvery {
		e.lastTemplate = now
		dst = be16(dst, tmplSet)
		dst = be16(dst, uint16(8+4*len(fields)))
		dst = be16(dst, templateID)
		dst = be16(dst, uint16(len(fields)))
		for _, f := range fields {
			dst = be16(dst, f.id)
			dst = be16(dst, f.size)
		}
		count++
	}
	size := recordSize(fields)
	room := (e.cfg.MaxSize - (len(dst) - start) - 4) / size
	setStart := len(dst)
	dst = be16(dst, dataSet)
	dst = be16(dst, 0) // set length, below
	used, records := 0, 0
	for ; used < len(fl) && records < room; used++ {
		f := &fl[used]
		if !f.SrcAddr.Is4() || !f.DstAddr.Is4() {
			continue
		}
		dst = be64(dst, f.RawBytes)
		dst = be64(dst, f.RawPackets)
		dst = append(dst, f.Proto, 0)
		if e.ipfix {
			dst = be16(dst, uint16(f.TCPFlags))
		} else {
			dst = append(dst, f.TCPFlags)
		}
		dst = be16(dst, f.SrcPort)
		dst = addr4(dst, f.SrcAddr)
		dst = append(dst, byte(max(f.SrcNet.Bits(), 0)))
		dst = be32(dst, f.InIf)
		dst = be16(dst, f.DstPort)
		dst = addr4(dst, f.DstAddr)
		dst = append(dst, byte(max(f.DstNet.Bits(), 0)))
		dst = be32(dst, f.OutIf)
		dst = addr4(dst, nextHop(f))
		dst = be32(dst, f.SrcAS)
		dst = be32(dst, f.DstAS)
		if e.ipfix {
			dst = be64(dst, uint64(f.TimeFlowStart.UnixMilli()))
			dst = be64(dst, uint64(f.TimeFlowEnd.UnixMilli()))
		} else {
			dst = be32(dst, uptime(f.TimeFlowEnd, e.cfg.Boot))
			dst = be32(dst, uptime(f.TimeFlowStart, e.cfg.Boot))
		}
		records++
	}
	if records == 0 {
		dst = dst[:setStart]
	} else {
		for (len(dst)-setStart)%4 != 0 { // sets are padded to 4 bytes
			dst = append(dst, 0)
		}
		binary.BigEndian.PutUint16(dst[setStart+2:], uint16(len(dst)-setStart))
	}
	count += records
	if e.ipfix {
		binary.BigEndian.PutUint16(dst[start+2:], uint16(len(dst)-start))
	} else {
		binary.BigEndian.PutUint16(dst[start+2:], uint16(count))
	}
	e.packets++
	e.records += uint32(records)
	return dst, max0(used, len(fl))
}
