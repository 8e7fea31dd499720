package flow

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"strconv"
	"time"
)

// Kind is the type of a flow field as rules see it.
type Kind uint8

// Field kinds.
const (
	KindUint Kind = iota + 1
	KindString
	KindBool
	KindAddr
	KindPrefix
	KindTime
	KindList
)

func (k Kind) String() string {
	switch k {
	case KindUint:
		return "number"
	case KindString:
		return "string"
	case KindBool:
		return "bool"
	case KindAddr:
		return "address"
	case KindPrefix:
		return "prefix"
	case KindTime:
		return "time"
	case KindList:
		return "list"
	}
	return "unknown"
}

// Field describes one named field of Flow with typed accessors that do not
// allocate. Exactly one of the getters is set, according to Kind.
type Field struct {
	Name   string
	Kind   Kind
	Uint   func(*Flow) uint64
	String func(*Flow) string
	Bool   func(*Flow) bool
	Addr   func(*Flow) netip.Addr
	Prefix func(*Flow) netip.Prefix
	Time   func(*Flow) time.Time
	List   func(*Flow) []string

	// key, when set, names the field among those whose AppendKey is
	// written out (the fields rules group by most): no getter call. A
	// switch, not a function value, so that dst does not escape.
	key keyOf
}

// keyOf names a field whose key AppendKey writes out.
type keyOf uint8

const (
	keyGeneric keyOf = iota
	keySrcAddr
	keyDstAddr
	keySrcPort
	keyDstPort
	keyProto
)

// AppendKey appends a compact binary form of the field's value to dst, for
// use in window keys. Distinct values give distinct bytes within one field.
func (fd *Field) AppendKey(dst []byte, f *Flow) []byte {
	switch fd.key {
	case keySrcAddr:
		return appendAddrKey(dst, f.SrcAddr)
	case keyDstAddr:
		return appendAddrKey(dst, f.DstAddr)
	case keySrcPort:
		return binary.BigEndian.AppendUint64(dst, uint64(f.SrcPort))
	case keyDstPort:
		return binary.BigEndian.AppendUint64(dst, uint64(f.DstPort))
	case keyProto:
		return binary.BigEndian.AppendUint64(dst, uint64(f.Proto))
	}
	switch fd.Kind {
	case KindUint:
		return binary.BigEndian.AppendUint64(dst, fd.Uint(f))
	case KindString:
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(fd.String(f))))
		return append(dst, fd.String(f)...)
	case KindBool:
		if fd.Bool(f) {
			return append(dst, 1)
		}
		return append(dst, 0)
	case KindAddr:
		return appendAddrKey(dst, fd.Addr(f))
	case KindPrefix:
		p := fd.Prefix(f)
		dst = appendAddrKey(dst, p.Addr())
		return append(dst, byte(p.Bits()))
	case KindTime:
		return binary.BigEndian.AppendUint64(dst, uint64(fd.Time(f).UnixNano()))
	case KindList:
		l := fd.List(f)
		dst = append(dst, byte(len(l)))
		for _, s := range l {
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
			dst = append(dst, s...)
		}
		return dst
	}
	return dst
}

func appendAddrKey(dst []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		return append(dst, 4, b[0], b[1], b[2], b[3])
	case a.Is6():
		b := a.As16()
		return append(append(dst, 6), b[:]...)
	}
	return append(dst, 0)
}

// Value returns the field's value in the form alerts print it: numbers as
// uint64, addresses and prefixes as strings, times in RFC 3339.
func (fd *Field) Value(f *Flow) any {
	switch fd.Kind {
	case KindUint:
		return fd.Uint(f)
	case KindString:
		return fd.String(f)
	case KindBool:
		return fd.Bool(f)
	case KindAddr:
		if a := fd.Addr(f); a.IsValid() {
			return a.String()
		}
		return ""
	case KindPrefix:
		if p := fd.Prefix(f); p.IsValid() {
			return p.String()
		}
		return ""
	case KindTime:
		return fd.Time(f).UTC().Format(time.RFC3339Nano)
	case KindList:
		return append([]string(nil), fd.List(f)...)
	}
	return nil
}

// AppendText appends the field's value as text (for messages and keys that
// people read).
func (fd *Field) AppendText(dst []byte, f *Flow) []byte {
	switch fd.Kind {
	case KindUint:
		return strconv.AppendUint(dst, fd.Uint(f), 10)
	case KindString:
		return append(dst, fd.String(f)...)
	case KindBool:
		return strconv.AppendBool(dst, fd.Bool(f))
	case KindAddr:
		if a := fd.Addr(f); a.IsValid() {
			return a.AppendTo(dst)
		}
		return dst
	case KindPrefix:
		if p := fd.Prefix(f); p.IsValid() {
			return p.AppendTo(dst)
		}
		return dst
	case KindTime:
		return fd.Time(f).UTC().AppendFormat(dst, time.RFC3339Nano)
	case KindList:
		for i, s := range fd.List(f) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, s...)
		}
		return dst
	}
	return dst
}

func u(name string, get func(*Flow) uint64) *Field {
	return &Field{Name: name, Kind: KindUint, Uint: get}
}
func s(name string, get func(*Flow) string) *Field {
	return &Field{Name: name, Kind: KindString, String: get}
}
func b(name string, get func(*Flow) bool) *Field {
	return &Field{Name: name, Kind: KindBool, Bool: get}
}
func a(name string, get func(*Flow) netip.Addr) *Field {
	return &Field{Name: name, Kind: KindAddr, Addr: get}
}
func p(name string, get func(*Flow) netip.Prefix) *Field {
	return &Field{Name: name, Kind: KindPrefix, Prefix: get}
}
func t(name string, get func(*Flow) time.Time) *Field {
	return &Field{Name: name, Kind: KindTime, Time: get}
}
func l(name string, get func(*Flow) []string) *Field {
	return &Field{Name: name, Kind: KindList, List: get}
}

var fields = map[string]*Field{}

func init() {
	for _, fd := range []*Field{
		s("type", func(f *Flow) string { return f.Type }),
		a("sampler_address", func(f *Flow) netip.Addr { return f.SamplerAddress }),
		u("sequence_num", func(f *Flow) uint64 { return uint64(f.SequenceNum) }),
		u("sampling_rate", func(f *Flow) uint64 { return uint64(f.SamplingRate) }),
		u("in_if", func(f *Flow) uint64 { return uint64(f.InIf) }),
		u("out_if", func(f *Flow) uint64 { return uint64(f.OutIf) }),
		s("exporter_name", func(f *Flow) string { return f.ExporterName }),
		s("in_if_name", func(f *Flow) string { return f.InIfName }),
		s("out_if_name", func(f *Flow) string { return f.OutIfName }),
		t("time_received", func(f *Flow) time.Time { return f.TimeReceived }),
		t("time_flow_start", func(f *Flow) time.Time { return f.TimeFlowStart }),
		t("time_flow_end", func(f *Flow) time.Time { return f.TimeFlowEnd }),
		a("src_addr", func(f *Flow) netip.Addr { return f.SrcAddr }),
		a("dst_addr", func(f *Flow) netip.Addr { return f.DstAddr }),
		u("src_port", func(f *Flow) uint64 { return uint64(f.SrcPort) }),
		u("dst_port", func(f *Flow) uint64 { return uint64(f.DstPort) }),
		u("proto", func(f *Flow) uint64 { return uint64(f.Proto) }),
		s("proto_name", func(f *Flow) string { return f.ProtoName }),
		u("tcp_flags", func(f *Flow) uint64 { return uint64(f.TCPFlags) }),
		b("syn", func(f *Flow) bool { return f.SYN }),
		b("ack", func(f *Flow) bool { return f.ACK }),
		b("fin", func(f *Flow) bool { return f.FIN }),
		b("rst", func(f *Flow) bool { return f.RST }),
		u("bytes", func(f *Flow) uint64 { return f.Bytes }),
		u("packets", func(f *Flow) uint64 { return f.Packets }),
		u("raw_bytes", func(f *Flow) uint64 { return f.RawBytes }),
		u("raw_packets", func(f *Flow) uint64 { return f.RawPackets }),
		u("src_as", func(f *Flow) uint64 { return uint64(f.SrcAS) }),
		u("dst_as", func(f *Flow) uint64 { return uint64(f.DstAS) }),
		a("next_hop", func(f *Flow) netip.Addr { return f.NextHop }),
		p("src_net", func(f *Flow) netip.Prefix { return f.SrcNet }),
		p("dst_net", func(f *Flow) netip.Prefix { return f.DstNet }),
		s("src_country", func(f *Flow) string { return f.SrcCountry }),
		s("src_city", func(f *Flow) string { return f.SrcCity }),
		u("src_asn", func(f *Flow) uint64 { return uint64(f.SrcASN) }),
		s("src_as_org", func(f *Flow) string { return f.SrcASOrg }),
		b("src_internal", func(f *Flow) bool { return f.SrcInternal }),
		s("src_network", func(f *Flow) string { return f.SrcNetwork }),
		l("src_lists", func(f *Flow) []string { return f.SrcLists }),
		s("dst_country", func(f *Flow) string { return f.DstCountry }),
		s("dst_city", func(f *Flow) string { return f.DstCity }),
		u("dst_asn", func(f *Flow) uint64 { return uint64(f.DstASN) }),
		s("dst_as_org", func(f *Flow) string { return f.DstASOrg }),
		b("dst_internal", func(f *Flow) bool { return f.DstInternal }),
		s("dst_network", func(f *Flow) string { return f.DstNetwork }),
		l("dst_lists", func(f *Flow) []string { return f.DstLists }),
		s("direction", func(f *Flow) string { return f.Direction }),
	} {
		if _, dup := fields[fd.Name]; dup {
			panic("flow: duplicate field " + fd.Name)
		}
		fields[fd.Name] = fd
	}
	fields["src_addr"].key = keySrcAddr
	fields["dst_addr"].key = keyDstAddr
	fields["src_port"].key = keySrcPort
	fields["dst_port"].key = keyDstPort
	fields["proto"].key = keyProto
}

// Lookup returns the field with the given name.
func Lookup(name string) (*Field, bool) {
	fd, ok := fields[name]
	return fd, ok
}

// FieldNames returns every field name, sorted.
func FieldNames() []string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DecodeKey reads back one value that AppendKey wrote at the start of b,
// in the form Value returns, and the rest of b. ok is false when b is too
// short: keys come from AppendKey, so that means a caller's bug.
func (fd *Field) DecodeKey(b []byte) (v any, rest []byte, ok bool) {
	switch fd.Kind {
	case KindUint, KindTime:
		if len(b) < 8 {
			return nil, b, false
		}
		u := binary.BigEndian.Uint64(b)
		if fd.Kind == KindTime {
			return time.Unix(0, int64(u)).UTC().Format(time.RFC3339Nano), b[8:], true
		}
		return u, b[8:], true
	case KindString:
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			return nil, b, false
		}
		n := int(binary.BigEndian.Uint16(b))
		return string(b[2 : 2+n]), b[2+n:], true
	case KindBool:
		if len(b) < 1 {
			return nil, b, false
		}
		return b[0] == 1, b[1:], true
	case KindAddr, KindPrefix:
		a, rest, ok := decodeAddrKey(b)
		if !ok {
			return nil, b, false
		}
		if fd.Kind == KindAddr {
			if !a.IsValid() {
				return "", rest, true
			}
			return a.String(), rest, true
		}
		if len(rest) < 1 {
			return nil, b, false
		}
		if !a.IsValid() {
			return "", rest[1:], true
		}
		return netip.PrefixFrom(a, int(rest[0])).String(), rest[1:], true
	case KindList:
		if len(b) < 1 {
			return nil, b, false
		}
		n, rest := int(b[0]), b[1:]
		out := make([]string, 0, n)
		for range n {
			if len(rest) < 2 || len(rest) < 2+int(binary.BigEndian.Uint16(rest)) {
				return nil, b, false
			}
			l := int(binary.BigEndian.Uint16(rest))
			out = append(out, string(rest[2:2+l]))
			rest = rest[2+l:]
		}
		return out, rest, true
	}
	return nil, b, false
}

func decodeAddrKey(b []byte) (netip.Addr, []byte, bool) {
	if len(b) < 1 {
		return netip.Addr{}, b, false
	}
	switch b[0] {
	case 4:
		if len(b) < 5 {
			return netip.Addr{}, b, false
		}
		return netip.AddrFrom4([4]byte(b[1:5])), b[5:], true
	case 6:
		if len(b) < 17 {
			return netip.Addr{}, b, false
		}
		return netip.AddrFrom16([16]byte(b[1:17])), b[17:], true
	case 0:
		return netip.Addr{}, b[1:], true
	}
	return netip.Addr{}, b, false
}

// DecodeGroup turns a key that AppendKey wrote for fields back into
// name → value, as alerts show groups.
func DecodeGroup(fields []*Field, key []byte) (map[string]any, bool) {
	out := make(map[string]any, len(fields))
	for _, fd := range fields {
		v, rest, ok := fd.DecodeKey(key)
		if !ok {
			return nil, false
		}
		out[fd.Name] = v
		key = rest
	}
	return out, len(key) == 0
}
