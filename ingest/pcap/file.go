package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// File magic numbers, as the first four bytes read big-endian.
const (
	magicMicros   = 0xa1b2c3d4
	magicNanos    = 0xa1b23c4d
	magicModified = 0xa1b2cd34 // Kuznetzov's patched libpcap: 24-byte record headers
	magicNG       = 0x0a0d0d0a // pcapng Section Header Block type
	ngByteOrder   = 0x1a2b3c4d
)

// pcapng block types.
const (
	blockInterface = 1
	blockPacketOld = 2
	blockSimple    = 3
	blockEnhanced  = 6
	blockSection   = magicNG
)

// Sanity bounds: a record or block larger than this is corruption, not a
// packet (pcap's own limit for snaplen is 256 KiB; pcapng blocks may carry
// more, so allow headroom).
const (
	maxRecord = 16 << 20
	minBuffer = 64 << 10
)

// errCorrupt marks a file whose framing cannot be followed any further.
var errCorrupt = errors.New("corrupt capture file")

// IsCapture reports whether head, the first bytes of a file (4 suffice),
// starts a pcap or pcapng file. Replay uses it to detect the input format.
func IsCapture(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	be, le := binary.BigEndian.Uint32(head), binary.LittleEndian.Uint32(head)
	for _, m := range []uint32{magicMicros, magicNanos, magicModified} {
		if be == m || le == m {
			return true
		}
	}
	return be == magicNG
}

// record is one packet as the file holds it. data is valid until the next
// call to next.
type record struct {
	ts   int64 // ns since the Unix epoch
	link uint32
	data []byte // captured bytes
	wire uint32 // length on the wire
}

// iface is a pcapng interface's link type and timestamp scale.
type iface struct {
	link    uint32
	snaplen uint32
	units   uint64 // timestamp units per second
	mul     uint64 // ns per unit when units divides 1e9, else 0
	offset  int64  // if_tsoffset, in ns
}

func (f *iface) nanos(ts uint64) int64 {
	if f.mul != 0 {
		return int64(ts*f.mul) + f.offset
	}
	sec, frac := ts/f.units, ts%f.units
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, f.units)
	return int64(sec)*1e9 + int64(ns) + f.offset
}

// fileReader walks the records of a pcap or pcapng stream through one
// reused buffer, so that reading a packet allocates nothing.
type fileReader struct {
	r        io.Reader
	buf      []byte
	off, end int   // unread bytes are buf[off:end]
	pos      int64 // file offset of buf[off]
	eof      bool
	readErr  error
	big      bool // byte order of the current file or section
	ng       bool
	recHdr   int // pcap record header size (16, or 24 for the modified format)
	tsScale  int64
	link     uint32
	ifaces   []iface
	lastTime int64 // for pcapng simple packets, which carry no timestamp
}

func (fr *fileReader) u16(b []byte) uint16 {
	if fr.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (fr *fileReader) u32(b []byte) uint32 {
	if fr.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// fill makes at least n unread bytes available, or as many as remain.
func (fr *fileReader) fill(n int) int {
	if fr.end-fr.off >= n {
		return fr.end - fr.off
	}
	if n > len(fr.buf) {
		nb := make([]byte, max(n, 2*len(fr.buf)))
		fr.end = copy(nb, fr.buf[fr.off:fr.end])
		fr.off, fr.buf = 0, nb
	} else if fr.off > 0 {
		fr.end = copy(fr.buf, fr.buf[fr.off:fr.end])
		fr.off = 0
	}
	for fr.end-fr.off < n && !fr.eof {
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if err != nil {
			fr.eof = true
			if err != io.EOF {
				fr.readErr = err
			}
		}
	}
	return fr.end - fr.off
}

// peek returns the next n bytes without consuming them, or an error when
// the stream ends first: io.EOF at a clean boundary (nothing left),
// io.ErrUnexpectedEOF inside a record.
func (fr *fileReader) peek(n int) ([]byte, error) {
	if got := fr.fill(n); got < n {
		if fr.readErr != nil {
			return nil, fr.readErr
		}
		if got == 0 {
			return nil, io.EOF
		}
		return nil, io.ErrUnexpectedEOF
	}
	return fr.buf[fr.off : fr.off+n], nil
}

func (fr *fileReader) skip(n int) {
	fr.off += n
	fr.pos += int64(n)
}

// open reads the file header (pcap) or the first section header (pcapng).
func (fr *fileReader) open(r io.Reader, bufSize int) error {
	fr.r = r
	fr.buf = make([]byte, max(bufSize, minBuffer))
	head, err := fr.peek(4)
	if err != nil {
		return fmt.Errorf("reading file header: %w", noEOF(err))
	}
	switch m := binary.BigEndian.Uint32(head); {
	case m == magicNG:
		fr.ng = true
		return fr.section()
	case m == magicMicros || m == magicNanos || m == magicModified:
		fr.big = true
	default:
		m = binary.LittleEndian.Uint32(head)
		if m != magicMicros && m != magicNanos && m != magicModified {
			return fmt.Errorf("not a pcap or pcapng file (magic %x)", head)
		}
	}
	h, err := fr.peek(24)
	if err != nil {
		return fmt.Errorf("reading file header: %w", noEOF(err))
	}
	fr.recHdr = 16
	fr.tsScale = 1000
	switch fr.u32(h) {
	case magicNanos:
		fr.tsScale = 1
	case magicModified:
		fr.recHdr = 24
	}
	fr.link = fr.u32(h[20:]) & 0xffff // the upper bits may carry FCS information
	fr.skip(24)
	return nil
}

// noEOF turns a bare EOF in a header into ErrUnexpectedEOF: an empty file
// is not a capture.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next reads the next packet record into rec. It returns io.EOF at the end
// of the input, io.ErrUnexpectedEOF for a file cut inside a record, and an
// error wrapping errCorrupt when the framing makes no sense.
func (fr *fileReader) next(rec *record) error {
	if fr.ng {
		return fr.nextBlock(rec)
	}
	h, err := fr.peek(fr.recHdr)
	if err != nil {
		return err
	}
	sec, frac := fr.u32(h), fr.u32(h[4:])
	incl, wire := fr.u32(h[8:]), fr.u32(h[12:])
	if incl > maxRecord {
		return fmt.Errorf("%w: record at byte %d claims %d bytes", errCorrupt, fr.pos, incl)
	}
	n := fr.recHdr + int(incl)
	b, err := fr.peek(n)
	if err != nil {
		return noEOF(err)
	}
	rec.ts = int64(sec)*1e9 + int64(frac)*fr.tsScale
	rec.link = fr.link
	rec.data = b[fr.recHdr:n]
	rec.wire = max(wire, incl)
	fr.skip(n)
	return nil
}

// nextBlock reads pcapng blocks until one holds a packet.
func (fr *fileReader) nextBlock(rec *record) error {
	for {
		h, err := fr.peek(12)
		if err != nil {
			return err
		}
		typ := fr.u32(h)
		if typ == blockSection {
			if err := fr.section(); err != nil {
				return err
			}
			continue
		}
		n := int(fr.u32(h[4:]))
		if n < 12 || n%4 != 0 || n > maxRecord {
			return fmt.Errorf("%w: block at byte %d has length %d", errCorrupt, fr.pos, n)
		}
		b, err := fr.peek(n)
		if err != nil {
			return noEOF(err)
		}
		body := b[8 : n-4]
		ok, err := fr.block(typ, body, rec)
		fr.skip(n)
		if err != nil || ok {
			return err
		}
	}
}

// section reads a Section Header Block: a new byte order and a new set of
// interfaces.
func (fr *fileReader) section() error {
	h, err := fr.peek(12)
	if err != nil {
		return noEOF(err)
	}
	switch binary.BigEndian.Uint32(h[8:]) {
	case ngByteOrder:
		fr.big = true
	case 0x4d3c2b1a:
		fr.big = false
	default:
		return fmt.Errorf("%w: section header at byte %d has byte-order magic %x", errCorrupt, fr.pos, h[8:12])
	}
	n := int(fr.u32(h[4:]))
	if n < 28 || n%4 != 0 || n > maxRecord {
		return fmt.Errorf("%w: section header at byte %d has length %d", errCorrupt, fr.pos, n)
	}
	if _, err := fr.peek(n); err != nil {
		return noEOF(err)
	}
	fr.skip(n)
	fr.ifaces = fr.ifaces[:0]
	return nil
}

// block interprets one pcapng block body and reports whether it filled rec
// with a packet. Blocks of other types are skipped.
func (fr *fileReader) block(typ uint32, body []byte, rec *record) (bool, error) {
	switch typ {
	case blockInterface:
		if len(body) < 8 {
			return false, fmt.Errorf("%w: short interface block at byte %d", errCorrupt, fr.pos)
		}
		f := iface{link: uint32(fr.u16(body)), snaplen: fr.u32(body[4:]), units: 1e6, mul: 1000}
		fr.options(body[8:], &f)
		fr.ifaces = append(fr.ifaces, f)
		return false, nil
	case blockEnhanced, blockPacketOld:
		if len(body) < 20 {
			return false, fmt.Errorf("%w: short packet block at byte %d", errCorrupt, fr.pos)
		}
		id := fr.u32(body)
		if typ == blockPacketOld {
			id = uint32(fr.u16(body))
		}
		if int(id) >= len(fr.ifaces) {
			return false, fmt.Errorf("%w: packet block at byte %d names interface %d of %d", errCorrupt, fr.pos, id, len(fr.ifaces))
		}
		f := &fr.ifaces[id]
		incl, wire := fr.u32(body[12:]), fr.u32(body[16:])
		if int(incl) > len(body)-20 {
			return false, fmt.Errorf("%w: packet block at byte %d holds %d bytes, claims %d", errCorrupt, fr.pos, len(body)-20, incl)
		}
		rec.ts = f.nanos(uint64(fr.u32(body[4:]))<<32 | uint64(fr.u32(body[8:])))
		rec.link = f.link
		rec.data = body[20 : 20+incl]
		rec.wire = max(wire, incl)
		fr.lastTime = rec.ts
		return true, nil
	case blockSimple:
		if len(body) < 4 || len(fr.ifaces) == 0 {
			return false, fmt.Errorf("%w: simple packet block at byte %d without interface", errCorrupt, fr.pos)
		}
		f := &fr.ifaces[0]
		wire := fr.u32(body)
		incl := min(uint32(len(body)-4), wire)
		if f.snaplen != 0 {
			incl = min(incl, f.snaplen)
		}
		rec.ts = fr.lastTime
		rec.link = f.link
		rec.data = body[4 : 4+incl]
		rec.wire = wire
		return true, nil
	}
	return false, nil
}

// options reads the interface options that matter here: if_tsresol and
// if_tsoffset.
func (fr *fileReader) options(b []byte, f *iface) {
	for len(b) >= 4 {
		code, n := fr.u16(b), int(fr.u16(b[2:]))
		b = b[4:]
		if code == 0 || n > len(b) {
			return
		}
		v := b[:n]
		switch {
		case code == 9 && n >= 1: // if_tsresol
			r := v[0]
			var units uint64 = 1
			if r&0x80 != 0 {
				if r&0x7f < 64 {
					units = 1 << (r & 0x7f)
				}
			} else {
				for range min(r, 19) {
					units *= 10
				}
			}
			f.units, f.mul = units, 0
			if units <= 1e9 && 1e9%units == 0 {
				f.mul = 1e9 / units
			}
		case code == 14 && n >= 8: // if_tsoffset, seconds
			if fr.big {
				f.offset = int64(binary.BigEndian.Uint64(v)) * 1e9
			} else {
				f.offset = int64(binary.LittleEndian.Uint64(v)) * 1e9
			}
		}
		p := (n + 3) &^ 3
		if p > len(b) {
			return
		}
		b = b[p:]
	}
}
