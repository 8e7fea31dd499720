package flowfile

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/flowguard/flowguard/flow"
)

// jsonParser decodes one JSON object a line into a flow.Flow without
// reflection. It accepts both goflow2's field names and encodings
// (time_received_ns as Unix nanoseconds, "proto":"TCP", "etype":"IPv4",
// src_net as "10.0.0.0/8") and flowguard's (time_received in RFC 3339,
// "proto":6 with proto_name, raw_bytes). Keys match ignoring case and
// underscores, so goflow v1's CamelCase (SrcAddr, TimeFlowStart) reads too.
// Unknown keys are skipped, whatever their value.
type jsonParser struct {
	buf  []byte // unescaped string scratch
	keyb [40]byte

	// per line
	hasRawBytes, hasRawPackets bool
	hasBytes, hasPackets       bool
	hasFlags, hasProto         bool
	bytes, packets             uint64
	flagBits                   uint8 // from syn/ack/fin/rst when tcp_flags is absent
	protoName                  []byte

	strs map[string]string // interned string values (countries, cities, ...)
}

// maxInterned bounds the intern table; later new strings are allocated.
const maxInterned = 4096

// intern returns b as a string, shared with earlier equal values, so that
// enrichment fields repeated on every line cost no allocation.
func (p *jsonParser) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if p.strs == nil {
		p.strs = make(map[string]string)
	}
	if len(p.strs) < maxInterned {
		p.strs[s] = s
	}
	return s
}

// jsonError is a decode error; it names the byte offset in the line.
type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

func (p *jsonParser) parseLine(line []byte, f *flow.Flow) (skip, stop bool, err error) {
	i := skipSpace(line, 0)
	if i == len(line) {
		return true, false, nil
	}
	p.hasRawBytes, p.hasRawPackets, p.hasBytes, p.hasPackets = false, false, false, false
	p.hasFlags, p.hasProto, p.flagBits, p.protoName = false, false, 0, nil
	if line[i] != '{' {
		return false, false, &jsonError{i, "expected '{'"}
	}
	i++
	first := true
	for {
		i = skipSpace(line, i)
		if i == len(line) {
			return false, false, &jsonError{i, "unexpected end of line"}
		}
		if line[i] == '}' {
			i++
			break
		}
		if !first {
			if line[i] != ',' {
				return false, false, &jsonError{i, "expected ',' or '}'"}
			}
			i = skipSpace(line, i+1)
		}
		first = false
		var key, rawKey []byte
		key, rawKey, i, err = p.readKey(line, i)
		if err != nil {
			return false, false, err
		}
		i = skipSpace(line, i)
		if i == len(line) || line[i] != ':' {
			return false, false, &jsonError{i, "expected ':'"}
		}
		i = skipSpace(line, i+1)
		if i, err = p.field(key, rawKey, line, i, f); err != nil {
			return false, false, err
		}
	}
	if i = skipSpace(line, i); i != len(line) {
		return false, false, &jsonError{i, "data after the object"}
	}
	return false, false, p.finish(f)
}

// finish derives what depends on several keys.
func (p *jsonParser) finish(f *flow.Flow) error {
	if !p.hasProto && p.protoName != nil {
		n, ok := protoFromName(p.protoName)
		if !ok {
			return fmt.Errorf("proto_name: unknown protocol %q", p.protoName)
		}
		f.Proto = n
	}
	f.ProtoName = flow.ProtoName(f.Proto)
	if p.hasFlags {
		f.SetTCPFlags(f.TCPFlags)
	} else {
		f.SetTCPFlags(p.flagBits)
	}
	// bytes and packets: with raw_* present the file is flowguard's and
	// bytes/packets are already renormalised; otherwise (goflow2) they are
	// what the exporter sent and are multiplied by sampling_rate.
	if !p.hasRawBytes {
		f.RawBytes = p.bytes
	}
	if !p.hasRawPackets {
		f.RawPackets = p.packets
	}
	f.Renormalise()
	if p.hasRawBytes && p.hasBytes {
		f.Bytes = p.bytes
	}
	if p.hasRawPackets && p.hasPackets {
		f.Packets = p.packets
	}
	if f.Type == "" {
		f.Type = flow.TypeFile
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// readKey reads a quoted key and returns it lower-cased with underscores
// and dashes removed (in p.keyb; a longer key comes back unnormalised and
// matches nothing), and as written, for messages.
func (p *jsonParser) readKey(b []byte, i int) (key, raw []byte, next int, err error) {
	if i >= len(b) || b[i] != '"' {
		return nil, nil, i, &jsonError{i, "expected a quoted key"}
	}
	s, next, err := p.readString(b, i)
	if err != nil {
		return nil, nil, next, err
	}
	raw = s
	if len(s) > 0 && &s[0] != &b[i+1] {
		raw = nil // unescaped into p.buf, which the value may overwrite
	}
	n := 0
	for _, c := range s {
		if c == '_' || c == '-' {
			continue
		}
		if n == len(p.keyb) {
			return s, s, next, nil
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		p.keyb[n] = c
		n++
	}
	if raw == nil {
		raw = p.keyb[:n]
	}
	return p.keyb[:n], raw, next, nil
}

// readString reads the string starting at the quote b[i]. The result
// aliases b when the string has no escapes, else p.buf; either way it is
// valid only until the next call.
func (p *jsonParser) readString(b []byte, i int) ([]byte, int, error) {
	start := i + 1
	j := start
	for j < len(b) {
		c := b[j]
		if c == '"' {
			return b[start:j], j + 1, nil
		}
		if c == '\\' {
			return p.readEscaped(b, start, j)
		}
		if c < 0x20 {
			return nil, j, &jsonError{j, "control character in string"}
		}
		j++
	}
	return nil, j, &jsonError{j, "unterminated string"}
}

func (p *jsonParser) readEscaped(b []byte, start, j int) ([]byte, int, error) {
	p.buf = append(p.buf[:0], b[start:j]...)
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			return p.buf, j + 1, nil
		case c < 0x20:
			return nil, j, &jsonError{j, "control character in string"}
		case c != '\\':
			p.buf = append(p.buf, c)
			j++
			continue
		}
		if j+1 >= len(b) {
			break
		}
		switch e := b[j+1]; e {
		case '"', '\\', '/':
			p.buf = append(p.buf, e)
		case 'b':
			p.buf = append(p.buf, '\b')
		case 'f':
			p.buf = append(p.buf, '\f')
		case 'n':
			p.buf = append(p.buf, '\n')
		case 'r':
			p.buf = append(p.buf, '\r')
		case 't':
			p.buf = append(p.buf, '\t')
		case 'u':
			r, ok := hex4(b, j+2)
			if !ok {
				return nil, j, &jsonError{j, "bad \\u escape"}
			}
			j += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(b, j+2); ok && j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						j += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			p.buf = utf8.AppendRune(p.buf, r)
			continue
		default:
			return nil, j, &jsonError{j, "bad escape"}
		}
		j += 2
	}
	return nil, j, &jsonError{j, "unterminated string"}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// value is one scalar JSON value as read from the line.
type value struct {
	kind byte   // 's' string, 'n' number, 't' true, 'f' false, '0' null, '[' array, '{' object
	raw  []byte // string contents (unescaped) or number text
}

// readValue reads a scalar, or skips an array or object.
func (p *jsonParser) readValue(b []byte, i int) (value, int, error) {
	if i >= len(b) {
		return value{}, i, &jsonError{i, "expected a value"}
	}
	switch c := b[i]; {
	case c == '"':
		s, next, err := p.readString(b, i)
		return value{kind: 's', raw: s}, next, err
	case c == '-' || ('0' <= c && c <= '9'):
		j := i + 1
		for j < len(b) && isNumByte(b[j]) {
			j++
		}
		return value{kind: 'n', raw: b[i:j]}, j, nil
	case c == 't':
		return literal(b, i, "true", 't')
	case c == 'f':
		return literal(b, i, "false", 'f')
	case c == 'n':
		return literal(b, i, "null", '0')
	case c == '[' || c == '{':
		next, err := p.skipComposite(b, i)
		return value{kind: c}, next, err
	}
	return value{}, i, &jsonError{i, "expected a value"}
}

func isNumByte(c byte) bool {
	return ('0' <= c && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

func literal(b []byte, i int, word string, kind byte) (value, int, error) {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return value{}, i, &jsonError{i, "expected a value"}
	}
	return value{kind: kind}, i + len(word), nil
}

// skipComposite skips a whole array or object, checking brackets and
// strings but not the grammar inside: an unknown field's value is not
// ours to judge beyond finding where it ends.
func (p *jsonParser) skipComposite(b []byte, i int) (int, error) {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '[', '{':
			depth++
			if depth > 64 {
				return i, &jsonError{i, "nested too deep"}
			}
		case ']', '}':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		case '"':
			_, next, err := p.readString(b, i)
			if err != nil {
				return next, err
			}
			i = next
			continue
		}
		i++
	}
	return i, &jsonError{i, "unterminated array or object"}
}

// field reads the value at b[i] into the flow field named key (normalised).
func (p *jsonParser) field(key, rawKey, b []byte, i int, f *flow.Flow) (int, error) {
	if i < len(b) && b[i] == '[' {
		switch string(key) {
		case "srclists":
			return p.readList(b, i, &f.SrcLists)
		case "dstlists":
			return p.readList(b, i, &f.DstLists)
		}
	}
	v, next, err := p.readValue(b, i)
	if err != nil {
		return next, err
	}
	if v.kind == '0' {
		return next, nil // null: not known
	}
	if err := p.set(key, v, f); err != nil {
		return next, fmt.Errorf("%s: %w", rawKey, err)
	}
	return next, nil
}

func (p *jsonParser) set(key []byte, v value, f *flow.Flow) error {
	var err error
	switch string(key) {
	case "type":
		f.Type, err = flowType(v)
	case "sampleraddress":
		f.SamplerAddress, err = addrValue(v)
	case "sequencenum":
		f.SequenceNum, err = uint32Value(v)
	case "samplingrate":
		f.SamplingRate, err = uint32Value(v)
	case "inif":
		f.InIf, err = uint32Value(v)
	case "outif":
		f.OutIf, err = uint32Value(v)
	case "exportername":
		f.ExporterName, err = p.stringValue(v)
	case "inifname":
		f.InIfName, err = p.stringValue(v)
	case "outifname":
		f.OutIfName, err = p.stringValue(v)
	case "timereceivedns":
		f.TimeReceived, err = timeValue(v, time.Nanosecond)
	case "timereceived":
		f.TimeReceived, err = timeValue(v, 0)
	case "timeflowstartns":
		f.TimeFlowStart, err = timeValue(v, time.Nanosecond)
	case "timeflowstartms":
		f.TimeFlowStart, err = timeValue(v, time.Millisecond)
	case "timeflowstart":
		f.TimeFlowStart, err = timeValue(v, 0)
	case "timeflowendns":
		f.TimeFlowEnd, err = timeValue(v, time.Nanosecond)
	case "timeflowendms":
		f.TimeFlowEnd, err = timeValue(v, time.Millisecond)
	case "timeflowend":
		f.TimeFlowEnd, err = timeValue(v, 0)
	case "srcaddr":
		f.SrcAddr, err = addrValue(v)
	case "dstaddr":
		f.DstAddr, err = addrValue(v)
	case "srcport":
		f.SrcPort, err = uint16Value(v)
	case "dstport":
		f.DstPort, err = uint16Value(v)
	case "proto":
		p.hasProto = true
		f.Proto, err = protoValue(v)
	case "protoname":
		if v.kind == 's' {
			p.protoName = v.raw
		}
	case "tcpflags":
		p.hasFlags = true
		var x uint64
		x, err = uintValue(v, math.MaxUint16)
		f.TCPFlags = uint8(x) // NetFlow v9 may carry 16 bits; the low 8 are the flags
	case "syn":
		p.flagBit(v, flow.TCPSyn)
	case "ack":
		p.flagBit(v, flow.TCPAck)
	case "fin":
		p.flagBit(v, flow.TCPFin)
	case "rst":
		p.flagBit(v, flow.TCPRst)
	case "bytes":
		p.hasBytes = true
		p.bytes, err = uintValue(v, math.MaxUint64)
	case "packets":
		p.hasPackets = true
		p.packets, err = uintValue(v, math.MaxUint64)
	case "rawbytes":
		p.hasRawBytes = true
		f.RawBytes, err = uintValue(v, math.MaxUint64)
	case "rawpackets":
		p.hasRawPackets = true
		f.RawPackets, err = uintValue(v, math.MaxUint64)
	case "srcas":
		f.SrcAS, err = uint32Value(v)
	case "dstas":
		f.DstAS, err = uint32Value(v)
	case "nexthop":
		f.NextHop, err = addrValue(v)
	case "srcnet":
		f.SrcNet, err = netValue(v, f.SrcAddr)
	case "dstnet":
		f.DstNet, err = netValue(v, f.DstAddr)
	case "srccountry":
		f.SrcCountry, err = p.stringValue(v)
	case "srccity":
		f.SrcCity, err = p.stringValue(v)
	case "srcasn":
		f.SrcASN, err = uint32Value(v)
	case "srcasorg":
		f.SrcASOrg, err = p.stringValue(v)
	case "srcinternal":
		f.SrcInternal, err = boolValue(v)
	case "srcnetwork":
		f.SrcNetwork, err = p.stringValue(v)
	case "dstcountry":
		f.DstCountry, err = p.stringValue(v)
	case "dstcity":
		f.DstCity, err = p.stringValue(v)
	case "dstasn":
		f.DstASN, err = uint32Value(v)
	case "dstasorg":
		f.DstASOrg, err = p.stringValue(v)
	case "dstinternal":
		f.DstInternal, err = boolValue(v)
	case "dstnetwork":
		f.DstNetwork, err = p.stringValue(v)
	case "direction":
		f.Direction, err = directionValue(v)
	}
	return err
}

// readList reads an array of strings (the threat lists of flowguard's
// JSON).
func (p *jsonParser) readList(b []byte, i int, dst *[]string) (int, error) {
	i = skipSpace(b, i+1)
	var list []string
	for i < len(b) && b[i] != ']' {
		if len(list) > 0 {
			if b[i] != ',' {
				return i, &jsonError{i, "expected ',' or ']'"}
			}
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return i, &jsonError{i, "expected a string in the list"}
		}
		s, next, err := p.readString(b, i)
		if err != nil {
			return next, err
		}
		list = append(list, p.intern(s))
		i = skipSpace(b, next)
	}
	if i >= len(b) {
		return i, &jsonError{i, "unterminated list"}
	}
	*dst = list
	return i + 1, nil
}

func (p *jsonParser) flagBit(v value, bit uint8) {
	if v.kind == 't' {
		p.flagBits |= bit
	}
}

var errType = errors.New("wrong type")

func uintValue(v value, max uint64) (uint64, error) {
	switch v.kind {
	case 'n', 's':
	case 't', 'f':
		if v.kind == 't' {
			return 1, nil
		}
		return 0, nil
	default:
		return 0, errType
	}
	x, ok := parseUint(v.raw)
	if !ok {
		// 1.5e3 and the like: accept a float that holds a whole number.
		fl, err := strconv.ParseFloat(unsafeString(v.raw), 64)
		if err != nil || fl < 0 || fl != math.Trunc(fl) || fl > float64(max) {
			return 0, fmt.Errorf("%q is not a non-negative integer", v.raw)
		}
		x = uint64(fl)
	}
	if x > max {
		return 0, fmt.Errorf("%s is out of range", v.raw)
	}
	return x, nil
}

func uint32Value(v value) (uint32, error) {
	x, err := uintValue(v, math.MaxUint32)
	return uint32(x), err
}

func uint16Value(v value) (uint16, error) {
	x, err := uintValue(v, math.MaxUint16)
	return uint16(x), err
}

// parseUint parses decimal digits; ok is false for anything else, empty
// input and overflow.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var x uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if x > (math.MaxUint64-d)/10 {
			return 0, false
		}
		x = x*10 + d
	}
	return x, true
}

func boolValue(v value) (bool, error) {
	switch v.kind {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 's':
		switch string(v.raw) {
		case "true", "1":
			return true, nil
		case "false", "0", "":
			return false, nil
		}
	case 'n':
		return string(v.raw) != "0", nil
	}
	return false, errType
}

func (p *jsonParser) stringValue(v value) (string, error) {
	if v.kind != 's' {
		return "", errType
	}
	return p.intern(v.raw), nil
}

// addrValue parses an address string; "" (goflow2's rendering of an absent
// address) leaves it unknown.
func addrValue(v value) (netip.Addr, error) {
	if v.kind != 's' {
		return netip.Addr{}, errType
	}
	return parseAddr(v.raw)
}

func parseAddr(b []byte) (netip.Addr, error) {
	if len(b) == 0 {
		return netip.Addr{}, nil
	}
	if a, ok := parseIPv4(b); ok {
		return a, nil
	}
	a, err := netip.ParseAddr(unsafeString(b))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", b)
	}
	return a, nil
}

// parseIPv4 is the allocation-free fast path for dotted quads.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	part, digits := 0, 0
	var x int
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			if digits > 0 && x == 0 {
				return netip.Addr{}, false // leading zero
			}
			x = x*10 + int(c-'0')
			digits++
			if x > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || part == 3 {
				return netip.Addr{}, false
			}
			ip[part] = byte(x)
			part++
			x, digits = 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if part != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	ip[3] = byte(x)
	return netip.AddrFrom4(ip), true
}

// netValue reads a prefix: "10.0.0.0/8" (both goflow2's rendering and
// flowguard's) or a bare mask length applied to addr. A /0 means the
// exporter did not say and leaves the prefix unknown.
func netValue(v value, addr netip.Addr) (netip.Prefix, error) {
	switch v.kind {
	case 's':
		if len(v.raw) == 0 {
			return netip.Prefix{}, nil
		}
		if bits, ok := parseUint(v.raw); ok {
			return maskPrefix(addr, bits)
		}
		pfx, err := netip.ParsePrefix(unsafeString(v.raw))
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix", v.raw)
		}
		if pfx.Bits() == 0 {
			return netip.Prefix{}, nil
		}
		return pfx, nil
	case 'n':
		bits, ok := parseUint(v.raw)
		if !ok {
			return netip.Prefix{}, fmt.Errorf("%q is not a mask length", v.raw)
		}
		return maskPrefix(addr, bits)
	}
	return netip.Prefix{}, errType
}

func maskPrefix(addr netip.Addr, bits uint64) (netip.Prefix, error) {
	if bits == 0 || !addr.IsValid() {
		return netip.Prefix{}, nil
	}
	if bits > uint64(addr.BitLen()) {
		return netip.Prefix{}, fmt.Errorf("mask length %d too long", bits)
	}
	return addr.Prefix(int(bits))
}

// timeValue reads a time: an RFC 3339 string, or a number in unit (0:
// guess the unit from the magnitude: s, ms, µs or ns since 1970). 0 means
// not known.
func timeValue(v value, unit time.Duration) (time.Time, error) {
	switch v.kind {
	case 's':
		if len(v.raw) == 0 {
			return time.Time{}, nil
		}
		if _, ok := parseUint(v.raw); !ok {
			t, err := time.Parse(time.RFC3339Nano, unsafeString(v.raw))
			if err != nil {
				return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", v.raw)
			}
			return t.UTC(), nil
		}
	case 'n':
	default:
		return time.Time{}, errType
	}
	x, ok := parseUint(v.raw)
	if !ok {
		fl, err := strconv.ParseFloat(unsafeString(v.raw), 64)
		if err != nil || fl < 0 {
			return time.Time{}, fmt.Errorf("%q is not a time", v.raw)
		}
		if unit == 0 {
			unit = time.Second
		}
		return time.Unix(0, int64(fl*float64(unit))).UTC(), nil
	}
	return unixTime(x, unit), nil
}

func unixTime(x uint64, unit time.Duration) time.Time {
	if x == 0 {
		return time.Time{}
	}
	if unit == 0 {
		switch {
		case x >= 1e17:
			unit = time.Nanosecond
		case x >= 1e14:
			unit = time.Microsecond
		case x >= 1e11:
			unit = time.Millisecond
		default:
			unit = time.Second
		}
	}
	if x > math.MaxInt64/uint64(unit) {
		return time.Unix(0, math.MaxInt64).UTC()
	}
	return time.Unix(0, int64(x)*int64(unit)).UTC()
}

// flowType interns the exporter type names, so that a line costs no
// allocation for them.
func flowType(v value) (string, error) {
	if v.kind != 's' {
		return "", errType
	}
	switch string(v.raw) {
	case flow.TypeNetFlowV1:
		return flow.TypeNetFlowV1, nil
	case flow.TypeNetFlowV5:
		return flow.TypeNetFlowV5, nil
	case flow.TypeNetFlowV7:
		return flow.TypeNetFlowV7, nil
	case flow.TypeNetFlowV8:
		return flow.TypeNetFlowV8, nil
	case flow.TypeNetFlowV9:
		return flow.TypeNetFlowV9, nil
	case flow.TypeIPFIX:
		return flow.TypeIPFIX, nil
	case flow.TypeSFlow5:
		return flow.TypeSFlow5, nil
	case flow.TypePcap:
		return flow.TypePcap, nil
	case flow.TypeCapture:
		return flow.TypeCapture, nil
	case flow.TypeFile, "", "FLOWUNKNOWN":
		return flow.TypeFile, nil
	}
	return string(v.raw), nil
}

func directionValue(v value) (string, error) {
	if v.kind != 's' {
		return "", errType
	}
	switch string(v.raw) {
	case flow.DirectionInbound:
		return flow.DirectionInbound, nil
	case flow.DirectionOutbound:
		return flow.DirectionOutbound, nil
	case flow.DirectionInternal:
		return flow.DirectionInternal, nil
	case flow.DirectionExternal:
		return flow.DirectionExternal, nil
	}
	return string(v.raw), nil
}

// protoValue reads a protocol: a number (flowguard), a goflow2 name
// ("TCP", "IPv6-ICMP"), a flowguard name ("icmpv6") or digits in a string.
func protoValue(v value) (uint8, error) {
	switch v.kind {
	case 'n':
		x, err := uintValue(v, math.MaxUint8)
		return uint8(x), err
	case 's':
		if n, ok := protoFromName(v.raw); ok {
			return n, nil
		}
		return 0, fmt.Errorf("unknown protocol %q", v.raw)
	}
	return 0, errType
}

// protoFromName maps protocol names as goflow2, nfdump and flowguard print
// them (case-insensitive) and decimal numbers to the protocol number.
func protoFromName(b []byte) (uint8, bool) {
	b = trimSpace(b)
	if x, ok := parseUint(b); ok {
		return uint8(x), x <= math.MaxUint8
	}
	var low [24]byte
	if len(b) > len(low) {
		return 0, false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	name := low[:len(b)]
	switch string(name) {
	case "tcp":
		return flow.ProtoTCP, true
	case "udp":
		return flow.ProtoUDP, true
	case "icmp":
		return flow.ProtoICMP, true
	case "ipv6-icmp", "icmp6", "icmpv6":
		return flow.ProtoICMPv6, true
	case "ipv4", "ipip", "ipinip":
		return 4, true
	case "ospfigp", "ospf":
		return 89, true
	case "ipv6":
		return 41, true
	}
	if n, ok := flow.ProtoNumber(unsafeString(name)); ok {
		return n, true
	}
	return 0, false
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// unsafeString views b as a string for parsers that do not keep their
// input (strconv, netip, time); it must not escape.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
