package networks

import (
	"net/netip"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/examples"
)

// The bundled pack's internal_nets (what its inbound and outbound macros
// test) and enrichment's default internal networks (src_internal,
// dst_internal, direction, `flowguard lookup`) are the same networks, so
// the two never disagree on an address, loopback included.
func TestBundledPackAgreesOnInternal(t *testing.T) {
	data, err := examples.Rules.ReadFile("rules/lists.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pack struct {
		Lists struct {
			InternalNets []string `yaml:"internal_nets"`
		} `yaml:"lists"`
	}
	if err := yaml.Unmarshal(data, &pack); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(pack.Lists.InternalNets))
	want := slices.Sorted(slices.Values(DefaultInternal))
	if !slices.Equal(got, want) {
		t.Errorf("examples/rules/lists.yaml internal_nets %v, enrichment's default internal %v", got, want)
	}
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.9", "::1", "10.1.2.3", "8.8.8.8", "169.254.0.1"} {
		ip := netip.MustParseAddr(a)
		inPack := slices.ContainsFunc(pack.Lists.InternalNets, func(p string) bool { return netip.MustParsePrefix(p).Contains(ip) })
		if n.Internal(ip) != inPack {
			t.Errorf("%s: internal %v for enrichment, %v for the pack", a, n.Internal(ip), inPack)
		}
	}
}
