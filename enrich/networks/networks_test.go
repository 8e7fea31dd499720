package networks

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

var addr = netip.MustParseAddr

func TestDefaultInternal(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{
		"10.1.2.3": true, "172.16.0.1": true, "172.32.0.1": false, "192.168.1.1": true,
		"100.64.0.1": true, "100.128.0.1": false, "169.254.1.1": true, "127.0.0.1": false,
		"fd12::1": true, "fe80::1": true, "::1": false, "::2": false, "2001:db8::1": false,
		"8.8.8.8": false, "::ffff:10.0.0.1": true,
	} {
		if got := n.Internal(addr(a)); got != want {
			t.Errorf("Internal(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestDirectionAndNamed(t *testing.T) {
	n, err := New(Config{
		Internal: []string{"10.0.0.0/8", "192.0.2.0/24"},
		Named: []NamedConfig{
			{Name: "corp", Prefix: "10.0.0.0/8", Attributes: map[string]string{"owner": "it"}},
			{Name: "dmz", Prefixes: []string{"10.1.0.0/16", "2001:db8:1::/48"}, Attributes: map[string]string{"site": "fra1", "role": "dmz"}},
			{Name: "partner", Prefix: "198.51.100.0/24"},
			{Name: "dns", Prefix: "10.1.0.53"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src, dst, dir, srcNet, dstNet string
	}{
		{"10.2.0.1", "8.8.8.8", flow.DirectionOutbound, "corp", ""},
		{"198.51.100.7", "10.1.0.9", flow.DirectionInbound, "partner", "dmz"},
		{"10.1.0.53", "192.0.2.1", flow.DirectionInternal, "dns", ""},
		{"2001:db8:1::1", "8.8.8.8", flow.DirectionExternal, "dmz", ""},
	} {
		f := flow.Flow{SrcAddr: addr(tc.src), DstAddr: addr(tc.dst), SrcNetwork: "stale"}
		n.Enrich(&f)
		if f.Direction != tc.dir || f.SrcNetwork != tc.srcNet || f.DstNetwork != tc.dstNet {
			t.Errorf("%s -> %s: direction %q networks %q %q, want %q %q %q",
				tc.src, tc.dst, f.Direction, f.SrcNetwork, f.DstNetwork, tc.dir, tc.srcNet, tc.dstNet)
		}
	}
	info := n.Lookup(addr("10.1.2.3"))
	if !info.Internal || info.Network != "dmz" || info.Prefix.String() != "10.1.0.0/16" || info.Attributes["site"] != "fra1" {
		t.Errorf("Lookup = %+v", info)
	}
	if got := n.Attributes("corp")["owner"]; got != "it" {
		t.Errorf("Attributes(corp) = %v", got)
	}
	f := flow.Flow{SrcAddr: addr("10.1.0.1"), DstAddr: addr("8.8.8.8")}
	if a := testing.AllocsPerRun(100, func() { n.Enrich(&f) }); a != 0 {
		t.Errorf("Enrich allocates %v times", a)
	}
}

func TestConfigErrors(t *testing.T) {
	err := Config{
		Internal: []string{"10.0.0.0/8", "10.0.0.1/8", "nonsense"},
		Named: []NamedConfig{
			{Name: "a", Prefix: "192.0.2.0/24"},
			{Name: "a", Prefix: "192.0.2.0/24"},
			{Prefix: "198.51.100.0/33"},
			{Name: "empty"},
		},
	}.Validate()
	for _, want := range []string{
		`internal[1]: "10.0.0.1/8" has host bits set (the network is 10.0.0.0/8)`,
		`internal[2]: "nonsense" is not a prefix`,
		`named[1].name: "a" already names named[0]`,
		`named[1].prefix: 192.0.2.0/24 already belongs to named[0] (a)`,
		`named[2].name: missing`,
		`named[2].prefix: "198.51.100.0/33"`,
		`named[3]: one of prefix or prefixes is required`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
}
