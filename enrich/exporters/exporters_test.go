package exporters

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

func TestNames(t *testing.T) {
	n, err := New(Config{"192.0.2.1": {Name: "edge1", Interfaces: map[uint32]string{1: "wan0", 2: "lan0"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := flow.Flow{SamplerAddress: netip.MustParseAddr("192.0.2.1"), InIf: 1, OutIf: 2}
	n.Enrich(&f)
	if f.ExporterName != "edge1" || f.InIfName != "wan0" || f.OutIfName != "lan0" {
		t.Errorf("got %q %q %q", f.ExporterName, f.InIfName, f.OutIfName)
	}
	f.SamplerAddress = netip.MustParseAddr("192.0.2.9")
	n.Enrich(&f)
	if f.ExporterName != "" || f.InIfName != "" {
		t.Errorf("an unknown exporter kept names %q %q", f.ExporterName, f.InIfName)
	}
	if allocs := testing.AllocsPerRun(100, func() { n.Enrich(&f) }); allocs != 0 {
		t.Errorf("%v allocs per flow", allocs)
	}
}

func TestValidate(t *testing.T) {
	err := Config{"edge": {Name: ""}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"edge" is not an IP address`) || !strings.Contains(err.Error(), "name: required") {
		t.Fatalf("got %v", err)
	}
}
