package rules

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

const perNetworkRule = `rules:
  - id: udp-flood
    severity: high
    where: "proto == 17"
    sum: packets
    group_by: [dst_addr]
    window: 10s
    threshold:
      default: 500pps
      by: dst_network
      networks: {cdn: 50kpps, office: 200pps}
`

func TestPerNetworkThreshold(t *testing.T) {
	set, err := LoadBytes("floods.yaml", []byte(perNetworkRule))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules[0]
	if !r.Rate || r.Threshold != 500 || r.ByNetwork == nil || r.ByNetwork.By.Name != "dst_network" {
		t.Fatalf("rate %v, threshold %v, by %+v", r.Rate, r.Threshold, r.ByNetwork)
	}
	f := &flow.Flow{DstAddr: netip.MustParseAddr("10.0.0.1")}
	for network, want := range map[string]float64{"cdn": 50e3, "office": 200, "": 500, "lab": 500} {
		f.DstNetwork = network
		if got := r.ThresholdFor(f); got != want {
			t.Errorf("network %q: threshold %v, want %v", network, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.ThresholdFor(f) }); n != 0 {
		t.Errorf("ThresholdFor allocates %v times", n)
	}
}

func TestPerNetworkThresholdErrors(t *testing.T) {
	for _, c := range []struct{ threshold, want string }{
		{"{by: dst_network, networks: {cdn: 1M}}", `floods.yaml:9:16: rule "x": threshold.default: required`},
		{"{default: 10k, networks: {cdn: 1M}}", `floods.yaml:9:16: rule "x": threshold.by: required with networks`},
		{"{default: 10k, by: src_addr}", `floods.yaml:9:35: rule "x": threshold.by: must be one of [dst_network src_network]`},
		{"{default: 10k, by: dst_network, networks: {cdn: 1Gbps}}", `floods.yaml:9:64: rule "x": threshold.networks.cdn: 1Gbps: not in the default's unit (count)`},
		{"{default: 10k, by: dst_network, networks: {cdn: 0}}", `floods.yaml:9:64: rule "x": threshold.networks.cdn: must be > 0`},
		{"{default: 10k, by: dst_network, network: {cdn: 1}}", `floods.yaml:9:48: rule "x": threshold.network: unknown field (did you mean networks?)`},
		{"{default: 10k, by: dst_network, networks: [cdn]}", `floods.yaml:9:58: rule "x": threshold.networks: must map network names`},
	} {
		src := "rules:\n  - id: x\n    severity: high\n    where: \"proto == 17\"\n    count: flows\n    group_by: [dst_addr]\n    window: 10s\n    # per network\n    threshold: " + c.threshold + "\n"
		_, err := LoadBytes("floods.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("threshold: %s\n got %v\nwant %s", c.threshold, err, c.want)
		}
	}
}

func TestDistinctOverFields(t *testing.T) {
	set, err := LoadBytes("scans.yaml", []byte(`rules:
  - id: pairs
    severity: high
    distinct: [src_addr, dst_port]
    group_by: [dst_addr]
    window: 1m
    threshold: 100
`))
	if err != nil {
		t.Fatal(err)
	}
	fd := set.Rules[0].DistinctField
	if fd.Name != "src_addr+dst_port" || fd.Kind != flow.KindUint {
		t.Fatalf("field %s kind %v", fd.Name, fd.Kind)
	}
	key := func(src string, port uint16) uint64 {
		return fd.Uint(&flow.Flow{SrcAddr: netip.MustParseAddr(src), DstPort: port})
	}
	seen := map[uint64]bool{}
	for _, src := range []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"} {
		for port := range uint16(100) {
			seen[key(src, port)] = true
		}
	}
	if len(seen) != 300 || key("192.0.2.1", 22) != key("192.0.2.1", 22) {
		t.Errorf("%d distinct keys for 300 pairs", len(seen))
	}
	f := &flow.Flow{SrcAddr: netip.MustParseAddr("192.0.2.1"), DstPort: 22}
	if n := testing.AllocsPerRun(100, func() { fd.Uint(f) }); n != 0 {
		t.Errorf("the pair key allocates %v times", n)
	}
	for _, c := range []struct{ distinct, want string }{
		{"[dst_port]", `distinct: a list needs two fields or more`},
		{"[src_addr, src_addr]", `distinct[1]: "src_addr" is listed twice`},
		{"[src_addr, dst_prot]", `distinct[1]: unknown flow field "dst_prot"`},
	} {
		_, err := LoadBytes("scans.yaml", []byte("rules:\n  - id: x\n    severity: high\n    distinct: "+c.distinct+"\n    group_by: [dst_addr]\n    window: 1m\n    threshold: 10\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("distinct: %s\n got %v\nwant %s", c.distinct, err, c.want)
		}
	}
}

func TestTemplateServiceFilter(t *testing.T) {
	tm, err := ParseTemplate("{src_port:service} from {src_port} to {dst_port:service}")
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Join(tm.Names(), ","); names != "src_port,src_port,dst_port" {
		t.Errorf("names %s", names)
	}
	vals := map[string]string{"src_port": "123", "dst_port": "40000"}
	got := string(tm.Render(nil, func(n string) (string, bool) { v, ok := vals[n]; return v, ok }))
	if got != "ntp from 123 to 40000" {
		t.Errorf("rendered %q", got)
	}
	if _, err := ParseTemplate("{src_port:upper}"); err == nil || !strings.Contains(err.Error(), `unknown filter "upper"`) {
		t.Errorf("unknown filter: %v", err)
	}
	for port, name := range map[uint16]string{53: "dns", 11211: "memcached", 3389: "rdp", 40000: ""} {
		if ServiceName(port) != name {
			t.Errorf("ServiceName(%d) = %q, want %q", port, ServiceName(port), name)
		}
	}
}
