package netflow

import (
	"encoding/binary"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// decodeV9 decodes a NetFlow v9 datagram (RFC 3954): a 20-byte header,
// then flowsets: 0 templates, 1 options templates, >= 256 data.
func (d *Decoder) decodeV9(e *exporter, s *versionStats, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	if len(p) < 20 {
		return out, ErrTruncated
	}
	h := header{
		version:   9,
		shift:     d.shift,
		sysUptime: binary.BigEndian.Uint32(p[4:]),
		unixSecs:  binary.BigEndian.Uint32(p[8:]),
		seq:       binary.BigEndian.Uint32(p[12:]),
		now:       now,
		nowNs:     now.UnixNano(),
	}
	key := domainKey{version: 9, id: binary.BigEndian.Uint32(p[16:])}
	dm := e.domain(key, h.nowNs)
	out, _, err := d.sets(e, s, key, dm, &h, p[20:], out)
	// v9 numbers export packets, whatever they hold.
	lost, restart := dm.seq.Observe(h.seq, 1)
	s.lostPackets.Add(lost)
	if restart {
		s.restarts.Add(1)
	}
	return out, err
}

// decodeIPFIX decodes an IPFIX message (RFC 7011): a 16-byte header, then
// sets: 2 templates, 3 options templates, >= 256 data.
func (d *Decoder) decodeIPFIX(e *exporter, s *versionStats, now time.Time, p []byte, out []flow.Flow) ([]flow.Flow, error) {
	if len(p) < 16 {
		return out, ErrTruncated
	}
	length := int(binary.BigEndian.Uint16(p[2:]))
	switch {
	case length < 16:
		return out, ErrMalformed
	case length > len(p):
		return out, ErrTruncated
	}
	h := header{
		version:  10,
		shift:    d.shift,
		unixSecs: binary.BigEndian.Uint32(p[4:]),
		seq:      binary.BigEndian.Uint32(p[8:]),
		now:      now,
		nowNs:    now.UnixNano(),
	}
	key := domainKey{version: 10, id: binary.BigEndian.Uint32(p[12:])}
	dm := e.domain(key, h.nowNs)
	n0 := len(out)
	out, records, err := d.sets(e, s, key, dm, &h, p[16:length], out)
	// IPFIX numbers data records; a set that waits for its template has an
	// unknown count (-1: resynchronise). Exporters differ on what they
	// count: see seqConvention.
	data := len(out) - n0
	if records < 0 {
		data = -1
	}
	lost, restarts := dm.conv.observe(h.seq, records, data)
	s.lostFlows.Add(lost)
	s.restarts.Add(restarts)
	return out, err
}

// sets walks the sets of a v9 or IPFIX datagram. It returns the number of
// data records decoded, or -1 when some could not be counted.
func (d *Decoder) sets(e *exporter, s *versionStats, key domainKey, dm *domain, h *header, b []byte, out []flow.Flow) ([]flow.Flow, int, error) {
	tmpl, opts := kV9Data, kV9Opts
	if h.version == 10 {
		tmpl, opts = kIPFIXData, kIPFIXOpts
	}
	records := 0
	var err error
	for len(b) >= 4 {
		id := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			return out, records, ErrMalformed
		}
		set := b[4:n]
		b = b[n:]
		switch {
		case id >= 256:
			t := dm.templates[id]
			if t != nil && h.nowNs-t.lastSeen > d.ttl {
				d.dropTemplate(e, s, dm, id, t)
				t = nil
			}
			if t == nil {
				s.templateMisses.Add(1)
				d.hold(e, s, key, id, h, set)
				records = -1
				continue
			}
			var n int
			out, n, err = d.dataSet(e, dm, t, h, set, out)
			if records >= 0 {
				records += n
			}
			if err != nil {
				return out, records, err
			}
		case id == 0 && h.version == 9, id == 2 && h.version == 10:
			if out, err = d.templateSet(tmpl, e, key, dm, h, set, out); err != nil {
				return out, records, err
			}
		case id == 1 && h.version == 9, id == 3 && h.version == 10:
			if out, err = d.templateSet(opts, e, key, dm, h, set, out); err != nil {
				return out, records, err
			}
		default:
			// Reserved set ids: skipped.
		}
	}
	s.samplingRate.Store(d.rate(e, dm.rate))
	return out, records, nil
}
