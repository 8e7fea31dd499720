package netflow

import (
	"bytes"
	"encoding/binary"

	"github.com/flowguard/flowguard/flow"
)

// varLen marks an IPFIX variable-length field in a template.
const varLen = 0xFFFF

// maxTemplates bounds the templates one observation domain may hold.
const maxTemplates = 4096

// tkind is the flavour of a template record.
type tkind uint8

const (
	kV9Data    tkind = iota // v9 set 0
	kV9Opts                 // v9 set 1
	kIPFIXData              // IPFIX set 2
	kIPFIXOpts              // IPFIX set 3
)

// tfield is one field of a compiled template.
type tfield struct {
	op     op
	length uint16 // varLen for variable-length fields
}

// fixedOp is a field worth reading in a template whose records have a
// fixed length, at its offset in the record.
type fixedOp struct {
	op       op
	kind     fixedKind
	off, len uint16
}

// template is a template record compiled into a plan: the fields to walk
// (variable-length templates) or the fields to read at fixed offsets.
type template struct {
	options  bool
	fields   []tfield
	fixed    []fixedOp // nil when the record length varies
	recLen   int       // record length; 0 when it varies
	minLen   int       // the shortest a record can be
	raw      []byte    // the template record as received, to recognise a refresh
	lastSeen int64
}

// templateExtent returns the id of the template record at the start of b,
// its length in bytes, and whether it is a withdrawal (IPFIX) or padding
// (ok false, no error).
func templateExtent(k tkind, b []byte) (id uint16, n int, withdraw, ok bool, err error) {
	if len(b) < 4 {
		return 0, 0, false, false, nil // padding
	}
	id = binary.BigEndian.Uint16(b)
	count := int(binary.BigEndian.Uint16(b[2:]))
	switch k {
	case kV9Data:
		if id == 0 && count == 0 {
			return 0, 0, false, false, nil
		}
		n = 4 + 4*count
	case kV9Opts:
		if len(b) < 6 {
			return 0, 0, false, false, nil
		}
		if id == 0 {
			return 0, 0, false, false, nil
		}
		scope, opts := count, int(binary.BigEndian.Uint16(b[4:]))
		if scope%4 != 0 || opts%4 != 0 {
			return 0, 0, false, false, ErrTemplate
		}
		n = 6 + scope + opts
	case kIPFIXData, kIPFIXOpts:
		if count == 0 {
			return id, 4, true, true, nil
		}
		off := 4
		if k == kIPFIXOpts {
			if len(b) < 6 {
				return 0, 0, false, false, ErrTemplate
			}
			scope := int(binary.BigEndian.Uint16(b[4:]))
			if scope == 0 || scope > count {
				return 0, 0, false, false, ErrTemplate
			}
			off = 6
		}
		for i := 0; i < count; i++ {
			if off+4 > len(b) {
				return 0, 0, false, false, ErrTemplate
			}
			if b[off]&0x80 != 0 {
				off += 8
			} else {
				off += 4
			}
		}
		n = off
	}
	if n > len(b) {
		return 0, 0, false, false, ErrTemplate
	}
	if id < 256 {
		return 0, 0, false, false, ErrTemplate
	}
	return id, n, false, true, nil
}

// compile builds the plan of the template record raw (as delimited by
// templateExtent).
func compile(k tkind, raw []byte) *template {
	t := &template{raw: bytes.Clone(raw)}
	var body []byte
	scope := 0 // fields (IPFIX) or bytes (v9) of scope
	switch k {
	case kV9Data:
		body = raw[4:]
	case kV9Opts:
		t.options = true
		scope = int(binary.BigEndian.Uint16(raw[2:]))
		body = raw[6:]
	case kIPFIXData:
		body = raw[4:]
	case kIPFIXOpts:
		t.options = true
		scope = int(binary.BigEndian.Uint16(raw[4:]))
		body = raw[6:]
	}
	variable := false
	for i := 0; len(body) >= 4; i++ {
		typ := binary.BigEndian.Uint16(body)
		length := binary.BigEndian.Uint16(body[2:])
		enterprise := false
		if k >= kIPFIXData && typ&0x8000 != 0 {
			enterprise = true
			body = body[8:]
		} else {
			body = body[4:]
		}
		o := opSkip
		switch {
		case enterprise:
			// Enterprise-specific: skipped, whatever its number.
		case k == kV9Opts && i < scope/4:
			// v9 scope field types (1 system, 2 interface, ...) are not
			// information elements.
		default:
			o = opFor(typ, length)
		}
		if length == varLen {
			variable = true
			t.minLen++
		} else {
			t.minLen += int(length)
		}
		t.fields = append(t.fields, tfield{op: o, length: length})
	}
	if !variable {
		t.recLen = t.minLen
		off := 0
		for _, fl := range t.fields {
			if fl.op != opSkip {
				t.fixed = append(t.fixed, fixedOp{op: fl.op, kind: fixedKindOf(fl.op, fl.length), off: uint16(off), len: fl.length})
			}
			off += int(fl.length)
		}
	}
	return t
}

// templateSet parses a template or options template set, adding, refreshing
// or withdrawing the templates it holds and decoding the data sets that
// waited for them.
func (d *Decoder) templateSet(k tkind, e *exporter, key domainKey, dm *domain, h *header, set []byte, out []flow.Flow) ([]flow.Flow, error) {
	s := e.vstats(slotOf(key.version))
	for len(set) > 0 {
		id, n, withdraw, ok, err := templateExtent(k, set)
		if err != nil {
			return out, err
		}
		if !ok {
			break
		}
		raw := set[:n]
		set = set[n:]
		if withdraw {
			d.withdraw(k, e, dm, s, id)
			continue
		}
		if t := dm.templates[id]; t != nil && bytes.Equal(t.raw, raw) {
			t.lastSeen = h.nowNs
			continue
		}
		if templateFieldCount(k, raw) > d.cfg.MaxTemplateFields {
			d.rej.tmplFields.Add(1)
			continue
		}
		if dm.templates == nil {
			dm.templates = make(map[uint16]*template)
		}
		old := dm.templates[id]
		if old == nil && len(dm.templates) >= maxTemplates {
			d.rej.tmplCount.Add(1)
			continue
		}
		t := compile(k, raw)
		if !d.admitTemplate(e, t, old) {
			continue
		}
		if old == nil {
			s.templates.Add(1)
		}
		t.lastSeen = h.nowNs
		dm.templates[id] = t
		if d.pending.waiting > 0 {
			out = d.replay(e, key, dm, id, t, out)
		}
	}
	return out, nil
}

// withdraw removes template id (or, for the set ids 2 and 3, all data or
// options templates) of an IPFIX domain.
func (d *Decoder) withdraw(k tkind, e *exporter, dm *domain, s *versionStats, id uint16) {
	switch {
	case id == 2 && k == kIPFIXData, id == 3 && k == kIPFIXOpts:
		for tid, t := range dm.templates {
			if t.options == (k == kIPFIXOpts) {
				d.dropTemplate(e, s, dm, tid, t)
			}
		}
	default:
		if t, ok := dm.templates[id]; ok {
			d.dropTemplate(e, s, dm, id, t)
		}
	}
}
