package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/enrich/geoip"
	"github.com/flowguard/flowguard/enrich/geoip/geoiptest"
	"github.com/flowguard/flowguard/enrich/intel"
	"github.com/flowguard/flowguard/enrich/networks"
	"github.com/flowguard/flowguard/flow"
)

var addr = netip.MustParseAddr

func demoConfig() Config {
	return Config{
		Networks: networks.Config{
			Internal: []string{"10.0.0.0/8"},
			Named: []networks.NamedConfig{
				{Name: "office", Prefix: "10.10.0.0/16", Attributes: map[string]string{"site": "fra1", "owner": "it"}},
			},
		},
		GeoIP: geoip.Config{Databases: []string{
			"geoip/testdata/" + geoiptest.DemoCityFile,
			"geoip/testdata/" + geoiptest.DemoASNFile,
		}},
		Intel: intel.Config{Lists: map[string]string{
			"spamhaus-drop":  "intel/testdata/drop.txt",
			"firehol-level1": "intel/testdata/firehol_level1.netset",
		}},
	}
}

func TestSetEnrichAndLookup(t *testing.T) {
	cfg := demoConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := flow.Flow{SrcAddr: addr("10.10.3.4"), DstAddr: addr("127.0.0.5")}
	s.Enrich(&f)
	if !f.SrcInternal || f.SrcNetwork != "office" || f.DstInternal || f.Direction != flow.DirectionOutbound ||
		f.DstCountry != "KP" || f.DstCity != "Pyongyang" || f.DstASN != 64500 || f.DstASOrg != "Example Org" ||
		len(f.DstLists) != 1 || f.DstLists[0] != "firehol-level1" || f.SrcCountry != "" || f.SrcLists != nil {
		t.Errorf("enriched flow: %+v", f)
	}

	r := s.Lookup(addr("192.0.2.200"))
	js, _ := json.Marshal(r)
	want := `{"address":"192.0.2.200","internal":false,"country":"DE","city":"Frankfurt am Main","asn":64501,"as_org":"Documentation One",` +
		`"lists":["firehol-level1","spamhaus-drop"],` +
		`"geoip":[{"database":"geoip/testdata/flowguard-test-City.mmdb","type":"GeoLite2-City","network":"192.0.2.0/24","country":"DE","city":"Frankfurt am Main"},` +
		`{"database":"geoip/testdata/flowguard-test-ASN.mmdb","type":"GeoLite2-ASN","network":"192.0.2.0/24","asn":64501,"as_org":"Documentation One"}],` +
		`"list_entries":[{"list":"firehol-level1","entry":"192.0.2.128/25"},{"list":"spamhaus-drop","entry":"192.0.2.0/24"}]}`
	if string(js) != want {
		t.Errorf("Lookup JSON\n got %s\nwant %s", js, want)
	}
	r = s.Lookup(addr("10.10.0.1"))
	text := r.Text()
	for _, w := range []string{"internal:       true", "network:        office (10.10.0.0/16)", "  site:         fra1"} {
		if !strings.Contains(text, w) {
			t.Errorf("Text lacks %q:\n%s", w, text)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestEmptyConfig(t *testing.T) {
	s, err := Build(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.GeoIP != nil || s.Intel != nil {
		t.Errorf("unconfigured enrichers built")
	}
	f := flow.Flow{SrcAddr: addr("192.168.1.1"), DstAddr: addr("8.8.8.8")}
	s.Enrich(&f)
	if f.Direction != flow.DirectionOutbound {
		t.Errorf("direction %q", f.Direction)
	}
	if r := s.Lookup(addr("127.0.0.1")); r.Internal {
		t.Errorf("loopback internal by default (the bundled pack treats it as outside): %+v", r)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cfg := demoConfig()
	cfg.Networks.Internal = append(cfg.Networks.Internal, "10.0.0.0/33")
	cfg.GeoIP.Databases = append(cfg.GeoIP.Databases, "/nonexistent/GeoLite2-City.mmdb")
	cfg.Intel.Lists["mine"] = "/nonexistent/mine.txt"
	err := cfg.Validate()
	for _, want := range []string{
		`enrich.networks.internal[1]: "10.0.0.0/33" is not a prefix`,
		"enrich.geoip.databases[2]: open /nonexistent/GeoLite2-City.mmdb: no such file or directory",
		"enrich.intel.lists.mine: open /nonexistent/mine.txt: no such file or directory",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nlacks %q", err, want)
		}
	}
	_, err = Build(cfg, nil)
	for _, want := range []string{
		`enrich.networks.internal[1]`,
		"enrich.geoip: stat /nonexistent/GeoLite2-City.mmdb: no such file",
		`enrich.intel: list "mine": stat /nonexistent/mine.txt: no such file`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build: %v\nlacks %q", err, want)
		}
	}
}

// BenchmarkChain enriches a realistic mix through the whole chain
// (networks, geoip with a warm cache, intel): 50k flows between 1k internal
// hosts and 1k outside addresses, with a City and an ASN database of 2k
// networks and threat lists of 20k entries. One op is one flow.
func BenchmarkChain(b *testing.B) {
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(7, 8))
	randV4 := func() netip.Addr {
		for {
			a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(222)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			if a.As4()[0] != 10 && a.As4()[0] != 127 {
				return a
			}
		}
	}
	var nets []geoiptest.Network
	countries := []string{"US", "DE", "FR", "GB", "NL", "CN", "RU", "BR", "JP", "IN"}
	for i := range 2000 {
		p := netip.PrefixFrom(randV4(), 12+r.IntN(13)).Masked()
		nets = append(nets, geoiptest.Network{Prefix: p.String(), Country: countries[i%len(countries)],
			City: fmt.Sprintf("City %d", i), ASN: uint32(64500 + i%500), ASOrg: fmt.Sprintf("Org %d", i%500)})
	}
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geoiptest.Write(city, geoiptest.TypeCity, nets); err != nil {
		b.Fatal(err)
	}
	if err := geoiptest.Write(asn, geoiptest.TypeASN, nets); err != nil {
		b.Fatal(err)
	}
	var outside []netip.Addr
	for range 1000 {
		// Mostly addresses the databases know, as on a real network.
		p := netip.MustParsePrefix(nets[r.IntN(len(nets))].Prefix)
		a := p.Addr().As4()
		a[3] |= byte(r.Uint32())
		outside = append(outside, netip.AddrFrom4(a))
	}
	lists := map[string]string{}
	for l := range 3 {
		var sb strings.Builder
		for i := range 20000 / 3 {
			if i%100 == 0 { // some of the addresses seen are listed
				fmt.Fprintf(&sb, "%s\n", outside[r.IntN(len(outside))])
			}
			fmt.Fprintf(&sb, "%s\n", netip.PrefixFrom(randV4(), 16+r.IntN(17)).Masked())
		}
		path := filepath.Join(dir, fmt.Sprintf("list%d.netset", l))
		os.WriteFile(path, []byte(sb.String()), 0o644)
		lists[fmt.Sprintf("list-%d", l)] = path
	}
	s, err := Build(Config{
		Networks: networks.Config{Named: []networks.NamedConfig{
			{Name: "office", Prefix: "10.10.0.0/16"}, {Name: "dc", Prefix: "10.20.0.0/16"}, {Name: "dmz", Prefix: "10.30.0.0/24"},
		}},
		GeoIP: geoip.Config{Databases: []string{city, asn}, ReloadInterval: time.Hour},
		Intel: intel.Config{Lists: lists},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The flows' addresses; each op puts the next pair into one flow, as a
	// decoder fills the batch that the engine then enriches while it is
	// hot in the CPU cache.
	type pair struct{ src, dst netip.Addr }
	pairs := make([]pair, 50000)
	for i := range pairs {
		in := netip.AddrFrom4([4]byte{10, byte(10 * (1 + r.IntN(3))), byte(r.IntN(4)), byte(r.IntN(250))})
		out := outside[r.IntN(len(outside))]
		if i%2 == 0 {
			pairs[i] = pair{in, out}
		} else {
			pairs[i] = pair{out, in}
		}
	}
	e := s.NewEnricher()
	var f flow.Flow
	for _, p := range pairs { // warm the cache
		f.SrcAddr, f.DstAddr = p.src, p.dst
		e.Enrich(&f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		p := &pairs[i%len(pairs)]
		f.SrcAddr, f.DstAddr = p.src, p.dst
		e.Enrich(&f)
	}
	cpu.report(b)
	e.(Chain)[1].(*geoip.Enricher).Flush()
	st := s.Stats().GeoIP
	b.ReportMetric(float64(st.CacheHits)/float64(st.CacheHits+st.CacheMisses), "hit-ratio")
}
