package kafka

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/flowguard/flowguard/flow"
)

// goflow2 (v2, `-format bin`) writes each flow as its FlowMessage protobuf
// (pb/flow.proto) preceded by the message's length as a varint, one message
// per Kafka record. A record is decoded as a sequence of such messages so
// that a producer batching several per record is read too. The fields
// flowguard has a place for are read; the others are skipped by wire type.

// The FlowMessage field numbers read (goflow2 v2 pb/flow.proto).
const (
	fieldType          = 1
	fieldSamplingRate  = 3
	fieldSequenceNum   = 4
	fieldSrcAddr       = 6
	fieldDstAddr       = 7
	fieldBytes         = 9
	fieldPackets       = 10
	fieldSamplerAddr   = 11
	fieldNextHop       = 12
	fieldSrcAS         = 14
	fieldDstAS         = 15
	fieldSrcNet        = 16
	fieldDstNet        = 17
	fieldInIf          = 18
	fieldOutIf         = 19
	fieldProto         = 20
	fieldSrcPort       = 21
	fieldDstPort       = 22
	fieldTCPFlags      = 26
	fieldICMPType      = 31
	fieldICMPCode      = 32
	fieldTimeReceived  = 110
	fieldTimeFlowStart = 111
	fieldTimeFlowEnd   = 112
)

// MaxMessageBytes bounds one encoded FlowMessage. goflow2's messages are a
// few hundred bytes; MPLS stacks and AS paths stay far below this.
const MaxMessageBytes = 64 << 10

// flowTypes maps FlowMessage.FlowType to flowguard's type names.
var flowTypes = [...]string{0: flow.TypeFile, 1: flow.TypeSFlow5, 2: flow.TypeNetFlowV5, 3: flow.TypeNetFlowV9, 4: flow.TypeIPFIX}

var (
	errTruncated = errors.New("message cut short")
	errTooLong   = fmt.Errorf("message longer than %d bytes", MaxMessageBytes)
)

// decodeRecord appends the flows of one record's value to out. On a
// malformed message it returns the flows decoded before it and the error:
// the rest of the record cannot be framed.
func decodeRecord(value []byte, out []flow.Flow) ([]flow.Flow, error) {
	for len(value) > 0 {
		n, k := protowire.ConsumeVarint(value)
		if k < 0 {
			return out, errTruncated
		}
		if n > MaxMessageBytes {
			return out, errTooLong
		}
		value = value[k:]
		if uint64(len(value)) < n {
			return out, errTruncated
		}
		out = append(out, flow.Flow{})
		if err := decodeMessage(value[:n], &out[len(out)-1]); err != nil {
			return out[:len(out)-1], err
		}
		value = value[n:]
	}
	return out, nil
}

// decodeMessage fills f from one FlowMessage.
func decodeMessage(b []byte, f *flow.Flow) error {
	var icmpType, icmpCode uint64
	var srcMask, dstMask uint64
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return fmt.Errorf("field tag: %w", protowire.ParseError(k))
		}
		b = b[k:]
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, k = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			raw, k = protowire.ConsumeBytes(b)
		default:
			k = protowire.ConsumeFieldValue(num, typ, b)
		}
		if k < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(k))
		}
		b = b[k:]
		if typ == protowire.BytesType {
			var err error
			switch num {
			case fieldSrcAddr:
				f.SrcAddr, err = addr(raw)
			case fieldDstAddr:
				f.DstAddr, err = addr(raw)
			case fieldSamplerAddr:
				f.SamplerAddress, err = addr(raw)
			case fieldNextHop:
				if a, e := addr(raw); e == nil && !a.IsUnspecified() {
					f.NextHop = a
				} else {
					err = e
				}
			}
			if err != nil {
				return fmt.Errorf("field %d: %w", num, err)
			}
			continue
		}
		if typ != protowire.VarintType {
			continue
		}
		switch num {
		case fieldType:
			if v < uint64(len(flowTypes)) {
				f.Type = flowTypes[v]
			} else {
				f.Type = flow.TypeFile
			}
		case fieldSamplingRate:
			f.SamplingRate = uint32(min(v, 1<<32-1))
		case fieldSequenceNum:
			f.SequenceNum = uint32(v)
		case fieldBytes:
			f.RawBytes = v
		case fieldPackets:
			f.RawPackets = v
		case fieldSrcAS:
			f.SrcAS = uint32(v)
		case fieldDstAS:
			f.DstAS = uint32(v)
		case fieldSrcNet:
			srcMask = v
		case fieldDstNet:
			dstMask = v
		case fieldInIf:
			f.InIf = uint32(v)
		case fieldOutIf:
			f.OutIf = uint32(v)
		case fieldProto:
			if v > 255 {
				return fmt.Errorf("proto %d out of range", v)
			}
			f.Proto = uint8(v)
		case fieldSrcPort:
			f.SrcPort = uint16(v)
		case fieldDstPort:
			f.DstPort = uint16(v)
		case fieldTCPFlags:
			f.TCPFlags = uint8(v) // NetFlow v9 may carry 16 bits; the low 8 are the flags
		case fieldICMPType:
			icmpType = v
		case fieldICMPCode:
			icmpCode = v
		case fieldTimeReceived:
			f.TimeReceived = unixNano(v)
		case fieldTimeFlowStart:
			f.TimeFlowStart = unixNano(v)
		case fieldTimeFlowEnd:
			f.TimeFlowEnd = unixNano(v)
		}
	}
	if f.Type == "" {
		f.Type = flow.TypeFile
	}
	f.SrcNet = prefix(f.SrcAddr, srcMask)
	f.DstNet = prefix(f.DstAddr, dstMask)
	if (f.Proto == flow.ProtoICMP || f.Proto == flow.ProtoICMPv6) && f.DstPort == 0 {
		// flowguard's decoders carry ICMP type and code as the
		// destination port, type<<8|code, as NetFlow exporters do.
		f.DstPort = uint16(icmpType&0xff)<<8 | uint16(icmpCode&0xff)
	}
	if f.SamplingRate == 0 {
		f.SamplingRate = 1 // none announced, as flowguard's decoders say it
	}
	f.SetProto(f.Proto)
	f.SetTCPFlags(f.TCPFlags)
	f.Renormalise()
	return nil
}

// addr reads an address of 4 or 16 bytes (IPv4-mapped IPv6 read as IPv4);
// none at all is the zero address.
func addr(b []byte) (netip.Addr, error) {
	switch len(b) {
	case 0:
		return netip.Addr{}, nil
	case 4, 16:
		a, _ := netip.AddrFromSlice(b)
		return a.Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes", len(b))
}

// prefix is a's network of the mask length bits; 0 (or a length longer
// than the address) leaves it unknown.
func prefix(a netip.Addr, bits uint64) netip.Prefix {
	if bits == 0 || !a.IsValid() || bits > uint64(a.BitLen()) {
		return netip.Prefix{}
	}
	p, _ := a.Prefix(int(bits))
	return p
}

func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	if ns > 1<<63-1 {
		ns = 1<<63 - 1
	}
	return time.Unix(0, int64(ns)).UTC()
}
