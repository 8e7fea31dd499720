package rules

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// benchPack is a realistic mix of eight conditions: scans, exfiltration
// with CIDR lists, country and port lists, threat-list hits.
const benchPack = testLists + `
rules:
  - id: vertical-port-scan
    severity: high
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 1m
    threshold: 100
    exceptions: ["src_addr in no_nets"]
  - id: host-sweep
    severity: medium
    where: tcp && syn && !ack && dst_port in admin_ports
    distinct: dst_addr
    group_by: [src_addr, dst_port]
    window: 5m
    threshold: 50
  - id: exfil
    severity: critical
    where: outbound && bytes > 10000
    sum: bytes
    group_by: [src_addr]
    window: 1h
    threshold: 500MB
  - id: blocked-country
    severity: high
    where: outbound && dst_country in blocked_countries
  - id: telnet-out
    severity: medium
    where: dst_port == 23 && outbound
  - id: threat-hit
    severity: critical
    where: '"spamhaus" in src_lists || "spamhaus" in dst_lists'
  - id: admin-from-outside
    severity: high
    where: 'dst_port in admin_ports && !(src_addr in internal_nets) && in_cidr(dst_addr, "10.0.0.0/8")'
    exceptions: ['src_addr == "198.51.100.23"']
  - id: udp-amplification
    severity: medium
    where: proto == 17 && src_port in [19, 53, 123, 1900, 11211] && bytes / packets > 400
`

func benchFlows(n int) []flow.Flow {
	r := rand.New(rand.NewPCG(1, 2))
	countries := []string{"US", "DE", "KP", "IR", "FR", "CN", ""}
	fs := make([]flow.Flow, n)
	for i := range fs {
		f := &fs[i]
		if r.IntN(2) == 0 {
			f.SrcAddr = netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		} else {
			f.SrcAddr = netip.AddrFrom4([4]byte{byte(r.IntN(223) + 1), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		if r.IntN(3) == 0 {
			f.DstAddr = netip.AddrFrom4([4]byte{192, 168, byte(r.IntN(256)), byte(r.IntN(256))})
		} else {
			f.DstAddr = netip.AddrFrom4([4]byte{byte(r.IntN(223) + 1), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		f.SrcPort = uint16(r.IntN(65536))
		f.DstPort = []uint16{22, 23, 53, 80, 443, 3389, 8080, uint16(r.IntN(65536))}[r.IntN(8)]
		f.SetProto([]uint8{6, 6, 6, 17, 1}[r.IntN(5)])
		f.SetTCPFlags(uint8(r.IntN(64)))
		f.Packets = uint64(r.IntN(1000) + 1)
		f.Bytes = f.Packets * uint64(r.IntN(1400)+40)
		f.DstCountry = countries[r.IntN(len(countries))]
		if r.IntN(20) == 0 {
			f.SrcLists = []string{"spamhaus"}
		}
	}
	return fs
}

// BenchmarkMatch reports the cost per flow of matching every rule of the
// pack; it must not allocate.
func BenchmarkMatch(b *testing.B) {
	set, err := LoadBytes("bench.yaml", []byte(benchPack))
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range set.Rules {
		if r.Where != nil && !r.Where.Native() {
			b.Fatalf("%s: not native", r.ID)
		}
	}
	flows := benchFlows(4096)
	b.ReportAllocs()
	b.ResetTimer()
	hits := 0
	for i := 0; b.Loop(); i++ {
		f := &flows[i&4095]
		for _, r := range set.Rules {
			if r.Match(f) {
				hits++
			}
		}
	}
	b.ReportMetric(float64(len(set.Rules)), "rules")
	if hits == 0 {
		b.Fatal("no rule ever matched")
	}
}

// BenchmarkMatchFallback shows what a condition costs on the expr VM.
func BenchmarkMatchFallback(b *testing.B) {
	cc := testCompiler(b)
	c, errs := cc.compile(`any(threat_lists, # in src_lists) || upper(dst_country) == "KP"`, true)
	if len(errs) > 0 || c.Native() {
		b.Fatal(errs)
	}
	flows := benchFlows(4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Eval(&flows[i&4095])
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	set, err := LoadBytes("bench.yaml", []byte(benchPack))
	if err != nil {
		t.Fatal(err)
	}
	flows := benchFlows(256)
	n := testing.AllocsPerRun(20, func() {
		for i := range flows {
			for _, r := range set.Rules {
				r.Match(&flows[i])
			}
		}
	})
	if n != 0 {
		t.Errorf("Match allocates %v times per pass", n)
	}
}

// BenchmarkLoadMacroBomb is the time to refuse testdata/bad/bomb.yaml, a
// 732-byte file whose rule would expand to 3 × 2^29 nodes.
func BenchmarkLoadMacroBomb(b *testing.B) {
	data, err := os.ReadFile("testdata/bad/bomb.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("bomb.yaml", data); err == nil {
			b.Fatal("the bomb loaded")
		}
	}
}
