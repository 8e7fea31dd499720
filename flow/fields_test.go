package flow

import (
	"reflect"
	"sort"
	"strings"
	"testing"
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
