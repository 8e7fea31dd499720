package flowfile

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// CSV columns flowguard reads. nfdump names them in its header line
// (`nfdump -o csv`, 1.6 and 1.7):
//
//	ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,
//	smk,dmk,dtos,dir,nh,nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,...,mpls10,
//	cl,sl,al,ra,eng,exid,tr
//
// Columns are found by name, so other column sets and flowguard's own
// field names (src_addr, dst_port, bytes, ...) work as well; columns not
// listed here are ignored.
const (
	colStart = iota
	colEnd
	colDuration
	colReceived
	colSrcAddr
	colDstAddr
	colSrcPort
	colDstPort
	colProto
	colFlags
	colPackets
	colBytes
	colInIf
	colOutIf
	colSrcAS
	colDstAS
	colSrcMask
	colDstMask
	colNextHop
	colRouter
	colSamplingRate
	colType
	numCols
)

var csvColumnNames = map[string]int{
	"ts": colStart, "first": colStart, "firstseen": colStart, "time_flow_start": colStart, "tstart": colStart,
	"te": colEnd, "last": colEnd, "lastseen": colEnd, "time_flow_end": colEnd, "tend": colEnd,
	"td": colDuration, "duration": colDuration,
	"tr": colReceived, "received": colReceived, "time_received": colReceived,
	"sa": colSrcAddr, "srcaddr": colSrcAddr, "src_addr": colSrcAddr, "srcip": colSrcAddr,
	"da": colDstAddr, "dstaddr": colDstAddr, "dst_addr": colDstAddr, "dstip": colDstAddr,
	"sp": colSrcPort, "srcport": colSrcPort, "src_port": colSrcPort,
	"dp": colDstPort, "dstport": colDstPort, "dst_port": colDstPort,
	"pr": colProto, "proto": colProto, "protocol": colProto, "proto_name": colProto,
	"flg": colFlags, "flags": colFlags, "tcp_flags": colFlags,
	"ipkt": colPackets, "pkt": colPackets, "packets": colPackets, "raw_packets": colPackets,
	"ibyt": colBytes, "byt": colBytes, "bytes": colBytes, "raw_bytes": colBytes,
	"in": colInIf, "in_if": colInIf, "input": colInIf,
	"out": colOutIf, "out_if": colOutIf, "output": colOutIf,
	"sas": colSrcAS, "src_as": colSrcAS,
	"das": colDstAS, "dst_as": colDstAS,
	"smk": colSrcMask, "src_mask": colSrcMask,
	"dmk": colDstMask, "dst_mask": colDstMask,
	"nh": colNextHop, "next_hop": colNextHop,
	"ra": colRouter, "router": colRouter, "exporter": colRouter, "sampler_address": colRouter,
	"sampling_rate": colSamplingRate,
	"type":          colType,
}

// nfdump17Header is the header nfdump 1.7 prints for -o csv; it is assumed
// for records without a header (nfdump -q).
const nfdump17Header = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,ra,eng,exid,tr"

// csvLayout maps each column flowguard reads to its index in a record, -1
// when the file has no such column.
type csvLayout struct {
	idx    [numCols]int
	fields int // columns in the header
}

// parseCSVHeader reads a header line; ok needs at least the two addresses.
func parseCSVHeader(line []byte) (csvLayout, bool) {
	var l csvLayout
	for i := range l.idx {
		l.idx[i] = -1
	}
	var name [32]byte
	for rest, col := line, 0; ; col++ {
		var field []byte
		field, rest = cutComma(rest)
		field = trimSpace(field)
		if len(field) <= len(name) {
			for i, c := range field {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				name[i] = c
			}
			if c, ok := csvColumnNames[string(name[:len(field)])]; ok && l.idx[c] < 0 {
				l.idx[c] = col
			}
		}
		if rest == nil {
			l.fields = col + 1
			break
		}
	}
	return l, l.idx[colSrcAddr] >= 0 && l.idx[colDstAddr] >= 0
}

var defaultLayout, _ = parseCSVHeader([]byte(nfdump17Header))

// cutComma splits at the first comma; rest is nil after the last field.
func cutComma(b []byte) (field, rest []byte) {
	if i := bytes.IndexByte(b, ','); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// isHeaderlessRecord reports whether line looks like an nfdump record with
// no header before it: a timestamp first and enough columns.
func isHeaderlessRecord(line []byte) bool {
	first, _ := cutComma(line)
	if _, err := parseNfdumpTime(trimSpace(first), time.UTC); err != nil {
		return false
	}
	return bytes.Count(line, []byte{','})+1 >= colCountMin
}

// colCountMin is the fewest columns a headerless record may have: up to
// ibyt (the 13th column) in nfdump's layout.
const colCountMin = 13

type csvParser struct {
	loc       *time.Location
	layout    csvLayout
	haveHdr   bool
	inSummary bool
	fields    [][]byte
}

func newCSVParser(loc *time.Location) *csvParser {
	if loc == nil {
		loc = time.Local
	}
	return &csvParser{loc: loc, fields: make([][]byte, 0, 64)}
}

var (
	summaryLine = []byte("Summary")
	noMatchLine = []byte("No matching flows")
)

func (p *csvParser) parseLine(line []byte, f *flow.Flow) (skip, stop bool, err error) {
	line = trimSpace(line)
	if len(line) == 0 {
		return true, false, nil
	}
	// nfdump ends its output with a summary block ("Summary", a header of
	// its own and one line of totals); skip it, and anything up to the
	// next flow header (files can be concatenated).
	if bytes.Equal(line, summaryLine) || bytes.HasPrefix(line, noMatchLine) {
		p.inSummary = true
		return true, false, nil
	}
	if c := line[0]; c < '0' || c > '9' {
		if l, ok := parseCSVHeader(line); ok {
			p.layout, p.haveHdr, p.inSummary = l, true, false
			return true, false, nil
		}
		if p.inSummary {
			return true, false, nil
		}
		return false, false, errors.New("neither a flow record nor a known header")
	}
	if p.inSummary {
		return true, false, nil
	}
	if !p.haveHdr {
		p.layout, p.haveHdr = defaultLayout, true
	}
	p.fields = p.fields[:0]
	for rest := line; ; {
		var fld []byte
		fld, rest = cutComma(rest)
		p.fields = append(p.fields, trimSpace(fld))
		if rest == nil {
			break
		}
	}
	if len(p.fields) < p.layout.fields {
		return false, false, fmt.Errorf("%d columns, the header has %d", len(p.fields), p.layout.fields)
	}
	return false, false, p.record(f)
}

func (p *csvParser) col(c int) []byte {
	if i := p.layout.idx[c]; i >= 0 && i < len(p.fields) {
		return p.fields[i]
	}
	return nil
}

func (p *csvParser) record(f *flow.Flow) error {
	var err error
	f.Type = flow.TypeFile
	if b := p.col(colType); len(b) > 0 {
		if f.Type, err = flowType(value{kind: 's', raw: b}); err != nil {
			return err
		}
	}
	if f.TimeFlowStart, err = p.time(colStart); err != nil {
		return fmt.Errorf("ts: %w", err)
	}
	if f.TimeFlowEnd, err = p.time(colEnd); err != nil {
		return fmt.Errorf("te: %w", err)
	}
	if f.TimeReceived, err = p.time(colReceived); err != nil {
		return fmt.Errorf("tr: %w", err)
	}
	if f.SrcAddr, err = parseAddr(p.col(colSrcAddr)); err != nil {
		return fmt.Errorf("sa: %w", err)
	}
	if f.DstAddr, err = parseAddr(p.col(colDstAddr)); err != nil {
		return fmt.Errorf("da: %w", err)
	}
	if !f.SrcAddr.IsValid() || !f.DstAddr.IsValid() {
		return errors.New("sa, da: no address")
	}
	if f.SrcPort, err = p.uint16(colSrcPort); err != nil {
		return fmt.Errorf("sp: %w", err)
	}
	if f.DstPort, err = p.uint16(colDstPort); err != nil {
		return fmt.Errorf("dp: %w", err)
	}
	if b := p.col(colProto); len(b) > 0 {
		proto, ok := protoFromName(b)
		if !ok {
			return fmt.Errorf("pr: unknown protocol %q", b)
		}
		f.Proto = proto
	}
	f.ProtoName = flow.ProtoName(f.Proto)
	flags, err := parseNfdumpFlags(p.col(colFlags))
	if err != nil {
		return fmt.Errorf("flg: %w", err)
	}
	f.SetTCPFlags(flags)
	if f.RawPackets, err = p.uint(colPackets, math.MaxUint64); err != nil {
		return fmt.Errorf("ipkt: %w", err)
	}
	if f.RawBytes, err = p.uint(colBytes, math.MaxUint64); err != nil {
		return fmt.Errorf("ibyt: %w", err)
	}
	if f.InIf, err = p.uint32(colInIf); err != nil {
		return fmt.Errorf("in: %w", err)
	}
	if f.OutIf, err = p.uint32(colOutIf); err != nil {
		return fmt.Errorf("out: %w", err)
	}
	if f.SrcAS, err = p.uint32(colSrcAS); err != nil {
		return fmt.Errorf("sas: %w", err)
	}
	if f.DstAS, err = p.uint32(colDstAS); err != nil {
		return fmt.Errorf("das: %w", err)
	}
	if f.SrcNet, err = p.mask(colSrcMask, f.SrcAddr); err != nil {
		return fmt.Errorf("smk: %w", err)
	}
	if f.DstNet, err = p.mask(colDstMask, f.DstAddr); err != nil {
		return fmt.Errorf("dmk: %w", err)
	}
	if f.NextHop, err = p.addrOrUnspecified(colNextHop); err != nil {
		return fmt.Errorf("nh: %w", err)
	}
	if f.SamplerAddress, err = p.addrOrUnspecified(colRouter); err != nil {
		return fmt.Errorf("ra: %w", err)
	}
	if f.SamplingRate, err = p.uint32(colSamplingRate); err != nil {
		return fmt.Errorf("sampling_rate: %w", err)
	}
	// nfcapd stores counters already scaled by the sampling rate it
	// knew, so without a sampling_rate column the rate stays unknown (1).
	f.Renormalise()
	return nil
}

func (p *csvParser) uint(c int, max uint64) (uint64, error) {
	b := p.col(c)
	if len(b) == 0 {
		return 0, nil
	}
	return uintValue(value{kind: 'n', raw: b}, max)
}

func (p *csvParser) uint32(c int) (uint32, error) {
	x, err := p.uint(c, math.MaxUint32)
	return uint32(x), err
}

func (p *csvParser) uint16(c int) (uint16, error) {
	x, err := p.uint(c, math.MaxUint16)
	return uint16(x), err
}

// addrOrUnspecified reads an address; nfdump prints 0.0.0.0 for "none".
func (p *csvParser) addrOrUnspecified(c int) (netip.Addr, error) {
	a, err := parseAddr(p.col(c))
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}, err
	}
	return a, nil
}

func (p *csvParser) mask(c int, addr netip.Addr) (netip.Prefix, error) {
	b := p.col(c)
	if len(b) == 0 {
		return netip.Prefix{}, nil
	}
	return netValue(value{kind: 'n', raw: b}, addr)
}

func (p *csvParser) time(c int) (time.Time, error) {
	b := p.col(c)
	if len(b) == 0 {
		return time.Time{}, nil
	}
	return parseNfdumpTime(b, p.loc)
}

// parseNfdumpTime reads "2006-01-02 15:04:05" with an optional fraction
// (nfdump prints local time), an RFC 3339 time, or Unix time as a number
// (unit guessed from its size).
func parseNfdumpTime(b []byte, loc *time.Location) (time.Time, error) {
	if x, ok := parseUint(b); ok {
		return unixTime(x, 0), nil
	}
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != ' ' && b[10] != 'T') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, fmt.Errorf("%q is not a time like 2006-01-02 15:04:05", b)
	}
	if b[10] == 'T' {
		t, err := time.Parse(time.RFC3339Nano, unsafeString(b))
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", b)
		}
		return t.UTC(), nil
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	hour, minute, sec := num(b[11:13]), num(b[14:16]), num(b[17:19])
	nsec := 0
	if len(b) > 19 {
		if b[19] != '.' || len(b) == 20 || len(b) > 29 {
			return time.Time{}, fmt.Errorf("%q: bad fraction of a second", b)
		}
		frac := num(b[20:])
		for i := len(b) - 20; i < 9; i++ {
			frac *= 10
		}
		nsec = frac
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
		minute < 0 || minute > 59 || sec < 0 || sec > 60 || nsec < 0 {
		return time.Time{}, fmt.Errorf("%q is not a valid time", b)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc).UTC(), nil
}

// parseNfdumpFlags reads TCP flags as nfdump prints them: one letter a flag
// at a fixed place and '.' for a clear one ("...A..S." in 1.7, ".A..S." in
// 1.6), or a number (decimal or 0x hex).
func parseNfdumpFlags(b []byte) (uint8, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		var x uint64
		for _, c := range b[2:] {
			r, ok := hex4([]byte{'0', '0', '0', c}, 0)
			if !ok || x > 0xff {
				return 0, fmt.Errorf("%q is not a flags value", b)
			}
			x = x<<4 | uint64(r)
		}
		if x > 0xff {
			return 0, fmt.Errorf("%q is not a flags value", b)
		}
		return uint8(x), nil
	}
	if x, ok := parseUint(b); ok {
		return uint8(x), nil // NetFlow carries 16 bits at most; the low 8 are the flags
	}
	var flags uint8
	for _, c := range b {
		switch c {
		case '.':
		case 'C':
			flags |= flow.TCPCwr
		case 'E':
			flags |= flow.TCPEce
		case 'U':
			flags |= flow.TCPUrg
		case 'A':
			flags |= flow.TCPAck
		case 'P':
			flags |= flow.TCPPsh
		case 'R':
			flags |= flow.TCPRst
		case 'S':
			flags |= flow.TCPSyn
		case 'F':
			flags |= flow.TCPFin
		default:
			return 0, fmt.Errorf("%q is not a flags value", b)
		}
	}
	return flags, nil
}
