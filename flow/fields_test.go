package flow

import (
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Every expr/json tag of Flow must have a field accessor of the same name,
// and every accessor must name a tag: the table and the struct cannot drift.
func TestFieldsMatchStructTags(t *testing.T) {
	var tags []string
	rt := reflect.TypeOf(Flow{})
	for i := 0; i < rt.NumField(); i++ {
		sf := rt.Field(i)
		if name, _, _ := strings.Cut(sf.Tag.Get("json"), ","); sf.Tag.Get("expr") != name {
			t.Errorf("field %s: expr tag %q != json tag %q", sf.Name, sf.Tag.Get("expr"), sf.Tag.Get("json"))
		}
		tags = append(tags, sf.Tag.Get("expr"))
	}
	sort.Strings(tags)
	if got := FieldNames(); !reflect.DeepEqual(got, tags) {
		t.Fatalf("field table %v\n!= struct tags %v", got, tags)
	}
}

func TestAccessorsReadTheirField(t *testing.T) {
	var f Flow
	f.DstPort = 443
	f.SetProto(ProtoTCP)
	f.SetTCPFlags(TCPSyn | TCPAck)
	fd, _ := Lookup("dst_port")
	if got := fd.Value(&f); got != uint64(443) {
		t.Errorf("dst_port = %v", got)
	}
	fd, _ = Lookup("proto_name")
	if got := fd.Value(&f); got != "tcp" {
		t.Errorf("proto_name = %v", got)
	}
	if !f.SYN || !f.ACK || f.FIN || f.RST {
		t.Errorf("flags booleans wrong: %+v", f)
	}
	if ProtoName(253) != "253" {
		t.Errorf("ProtoName(253) = %q", ProtoName(253))
	}
}

// Every kind of field reads back from its key what Value gives.
func TestDecodeKeyRoundTrip(t *testing.T) {
	var f Flow
	f.SrcAddr = netip.MustParseAddr("2001:db8::1")
	f.DstAddr = netip.MustParseAddr("192.0.2.7")
	f.DstPort = 3389
	f.ProtoName = "tcp"
	f.SYN = true
	f.SrcNet = netip.MustParsePrefix("10.0.0.0/8")
	f.DstLists = []string{"drop", "firehol"}
	f.TimeFlowEnd = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var fields []*Field
	var key []byte
	for _, n := range []string{"src_addr", "dst_addr", "dst_port", "proto_name", "syn", "src_net", "dst_lists", "time_flow_end", "next_hop"} {
		fd, _ := Lookup(n)
		fields = append(fields, fd)
		key = fd.AppendKey(key, &f)
	}
	got, ok := DecodeGroup(fields, key)
	if !ok {
		t.Fatal("key did not decode")
	}
	for _, fd := range fields {
		if w := fd.Value(&f); !reflect.DeepEqual(got[fd.Name], w) {
			t.Errorf("%s: decoded %#v, Value %#v", fd.Name, got[fd.Name], w)
		}
	}
	if _, ok := DecodeGroup(fields, key[:len(key)-1]); ok {
		t.Error("a cut key decoded")
	}
}
