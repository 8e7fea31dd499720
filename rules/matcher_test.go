package rules

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

func loadPack(t testing.TB) *Set {
	t.Helper()
	set, err := LoadFS(examples.Rules, "rules")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// streamFlows are the flows `make bench-e2e` sends.
func streamFlows(n int) []flow.Flow {
	return gen.StreamMix(1, 50000, n, 1.2e6, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// agree checks that the matcher's Mask of rs says what each rule's Match
// says, on every flow, setting only the rules' bits.
func agree(t *testing.T, rs []*Rule, flows []flow.Flow) (hits int) {
	t.Helper()
	m := NewMatcher(rs)
	mask := make([]uint64, (len(rs)+63)/64+1)
	for k := range flows {
		f := &flows[k]
		clear(mask)
		mask[len(mask)-1] = 1 << 63 // a word past the rules: left alone
		m.Mask(f, mask)
		for i, r := range rs {
			got, want := mask[i/64]&(1<<(i%64)) != 0, r.Match(f)
			if got != want {
				t.Fatalf("flow %d (%+v): rule %s: Mask says %v, Match %v", k, *f, r.ID, got, want)
			}
			if got {
				hits++
			}
		}
		if mask[len(mask)-1]&(1<<63) == 0 {
			t.Fatalf("flow %d: Mask changed a bit past the rules", k)
		}
	}
	return hits
}

func TestMatcherAgreesOnPack(t *testing.T) {
	set := loadPack(t)
	flows := streamFlows(1 << 16)
	flows = append(flows, benchFlows(4096)...)
	for _, f := range testFlows() {
		flows = append(flows, *f)
	}
	if hits := agree(t, set.Rules, flows); hits == 0 {
		t.Fatal("no rule matched")
	}
	// A subset and a repeated rule, as the engine's workers split them.
	sub := []*Rule{set.Rules[3], set.Rules[0], set.Rules[3], set.Rules[len(set.Rules)-1]}
	agree(t, sub, flows[:4096])
	agree(t, nil, flows[:1])
}

func TestMatcherAgreesOnBenchPack(t *testing.T) {
	set, err := LoadBytes("bench.yaml", []byte(benchPack))
	if err != nil {
		t.Fatal(err)
	}
	flows := benchFlows(4096)
	for _, f := range testFlows() {
		flows = append(flows, *f)
	}
	agree(t, set.Rules, flows)
}

// Conditions written many ways over the same macros and lists: shared
// nodes under and/or/not at every depth, whole wheres and exceptions
// repeated.
func TestMatcherAgreesOnShapes(t *testing.T) {
	conds := []string{
		"outbound", "!outbound", "outbound && tcp", "tcp && outbound", "outbound || big",
		"!(outbound || big) && tcp", "dst_port in admin_ports", "!(dst_port in admin_ports) || outbound",
		"src_country in many_countries && outbound", "dst_port in many_ports || (tcp && !big)",
		`in_cidr(dst_addr, "10.0.0.0/8") && !outbound`, `src_addr == "198.51.100.23" || big`,
		"(tcp ? bytes : packets) > 100", "bytes / packets > 400 && tcp", `"spamhaus" in src_lists`,
		"syn && !ack", "tcp && syn && !ack", "proto == 6 && syn && !ack", "src_asn in asns",
		// Inline lists that differ only in their items are not one.
		"dst_port in [22, 23] && outbound", "dst_port in [80, 443] && outbound",
		"dst_port in [22, 23] && outbound && tcp", "dst_port in [80, 443] && outbound && tcp",
		`dst_country in ["KP", "IR"] && !outbound`, `dst_country in ["US", "DE"] && !outbound`,
		"dst_port in [22, 23] || !outbound", "dst_port in [80, 443] || !outbound",
	}
	var b strings.Builder
	b.WriteString(testLists + "rules:\n")
	n := 0
	for i, w := range conds {
		for j, e := range []string{"", conds[(i+3)%len(conds)], conds[(i+7)%len(conds)]} {
			fmt.Fprintf(&b, "  - {id: r%d-%d, severity: low, where: %q", i, j, w)
			if e != "" {
				fmt.Fprintf(&b, ", exceptions: [%q, %q]", e, conds[(i+j)%len(conds)])
			}
			b.WriteString("}\n")
			n++
		}
	}
	b.WriteString("  - {id: exc-only, severity: low, exceptions: [outbound]}\n  - {id: none, severity: low}\n")
	set, err := LoadBytes("shapes.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Rules) != n+2 {
		t.Fatalf("%d rules loaded", len(set.Rules))
	}
	flows := benchFlows(2048)
	for _, f := range testFlows() {
		flows = append(flows, *f)
	}
	agree(t, set.Rules, flows)
	// Shared tests the program calls (not leaves of its loop) go through
	// the memo: these shapes have some.
	if NewMatcher(set.Rules).Slots() == 0 {
		t.Error("no memo slot: the shapes share no called sub-expression")
	}
}

// Conditions on the expr VM may fail at run time: the matcher runs them as
// Match does, so each rule counts the same errors, and shares none of them.
func TestMatcherCountsErrorsPerRule(t *testing.T) {
	const pack = testLists + `
rules:
  - {id: a, severity: low, where: "src_city matches dst_city"}
  - {id: b, severity: low, where: "src_city matches dst_city"}
  - {id: c, severity: low, where: "outbound && src_city matches dst_city"}
  - {id: d, severity: low, where: "outbound", exceptions: ["src_city matches dst_city", "tcp"]}
  - {id: e, severity: low, where: "tcp", exceptions: ["src_city matches dst_city"]}
  - {id: f, severity: low, where: "outbound", exceptions: ["src_city matches dst_city"]}
`
	load := func() *Set {
		set, err := LoadBytes("errs.yaml", []byte(pack))
		if err != nil {
			t.Fatal(err)
		}
		if set.Rules[0].Native() {
			t.Fatal("the condition runs native: the test needs one on the VM")
		}
		return set
	}
	flows := benchFlows(512)
	for i := range flows {
		switch i % 3 {
		case 0:
			flows[i].SrcCity, flows[i].DstCity = "Bern", "(" // a bad regexp: an error
		case 1:
			flows[i].SrcCity, flows[i].DstCity = "Bern", "^B"
		}
	}
	byMatch, byMask := load(), load()
	mm := NewMatcher(byMask.Rules)
	mask := make([]uint64, 1)
	for k := range flows {
		f := &flows[k]
		mask[0] = 0
		mm.Mask(f, mask)
		for i, r := range byMatch.Rules {
			if got, want := mask[0]&(1<<i) != 0, r.Match(f); got != want {
				t.Fatalf("flow %d: rule %s: Mask says %v, Match %v", k, r.ID, got, want)
			}
		}
	}
	for i, r := range byMatch.Rules {
		want := r.Errors.Count()
		if got := byMask.Rules[i].Errors.Count(); got != want {
			t.Errorf("rule %s: %d errors counted through Mask, %d through Match", r.ID, got, want)
		}
		if want == 0 && r.ID != "e" {
			t.Errorf("rule %s: no error counted", r.ID)
		}
	}
}

// Rules not made by the loader run their Match function; no function
// matches every flow.
func TestMatcherOtherRules(t *testing.T) {
	calls := 0
	rs := []*Rule{
		{ID: "nil"},
		{ID: "func", Match: func(f *flow.Flow) bool { calls++; return f.Proto == 6 }},
	}
	m := NewMatcher(rs)
	mask := make([]uint64, 1)
	m.Mask(&flow.Flow{Proto: 6}, mask)
	if mask[0] != 0b11 || calls != 1 {
		t.Fatalf("mask %b after %d calls, want 11 after 1", mask[0], calls)
	}
	mask[0] = 0
	m.Mask(&flow.Flow{Proto: 17}, mask)
	if mask[0] != 0b01 {
		t.Fatalf("mask %b on a UDP flow, want 01", mask[0])
	}
}

func TestMatcherDoesNotAllocate(t *testing.T) {
	set := loadPack(t)
	flows := streamFlows(1024)
	m := NewMatcher(set.Rules)
	mask := make([]uint64, 1)
	n := testing.AllocsPerRun(20, func() {
		for i := range flows {
			m.Mask(&flows[i], mask)
		}
	})
	if n != 0 {
		t.Errorf("Mask allocates %v times per pass", n)
	}
}

// BenchmarkMatchPack is the bundled pack's conditions over the flows `make
// bench-e2e` sends, per flow: each rule's Match, and the matcher's Mask
// (what the engine runs).
func BenchmarkMatchPack(b *testing.B) {
	set := loadPack(b)
	flows := streamFlows(1 << 16)
	b.Run("Match", func(b *testing.B) {
		b.ReportAllocs()
		hits := 0
		for i := 0; b.Loop(); i++ {
			f := &flows[i&(1<<16-1)]
			for _, r := range set.Rules {
				if r.Match(f) {
					hits++
				}
			}
		}
		if hits == 0 {
			b.Fatal("no rule matched")
		}
	})
	b.Run("Mask", func(b *testing.B) {
		m := NewMatcher(set.Rules)
		mask := make([]uint64, (len(set.Rules)+63)/64)
		b.ReportAllocs()
		hits := 0
		for i := 0; b.Loop(); i++ {
			clear(mask)
			m.Mask(&flows[i&(1<<16-1)], mask)
			hits += bits.OnesCount64(mask[0])
		}
		if hits == 0 {
			b.Fatal("no rule matched")
		}
	})
}

// Fields read at their offset read what flow.Field's getter does.
func TestFieldAtAgreesWithGetters(t *testing.T) {
	flows := append(benchFlows(64), streamFlows(64)...)
	flows = append(flows, hostileFlows(64, 4)...)
	for _, f := range testFlows() {
		flows = append(flows, *f)
	}
	if len(fieldsAt) < 20 {
		t.Fatalf("only %d fields located", len(fieldsAt))
	}
	for name, a := range fieldsAt {
		fd, ok := flow.Lookup(name)
		if !ok {
			t.Errorf("%s: no such field", name)
			continue
		}
		for i := range flows {
			f := &flows[i]
			var got, want any
			switch fd.Kind {
			case flow.KindUint:
				got, want = a.intFn()(f), int64(fd.Uint(f))
			case flow.KindBool:
				got, want = a.boolFn()(f), fd.Bool(f)
			case flow.KindAddr:
				got, want = a.addrFn()(f), fd.Addr(f)
			case flow.KindString:
				got, want = a.strFn()(f), fd.String(f)
			case flow.KindList:
				l, w := a.listFn()(f), fd.List(f)
				got, want = fmt.Sprintf("%d %q", len(l), l), fmt.Sprintf("%d %q", len(w), w)
			default:
				t.Fatalf("%s: kind %v located", name, fd.Kind)
			}
			if got != want {
				t.Fatalf("%s: flow %d: read %v, getter %v", name, i, got, want)
			}
		}
	}
}

// AddrSet agrees with its prefixes, scanned or searched, at range edges.
func TestAddrSetAgreesWithPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	addr := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(r.IntN(4) * 64), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	for n := range 20 {
		var ps []netip.Prefix
		for range n {
			ps = append(ps, netip.PrefixFrom(addr(), r.IntN(33)).Masked())
		}
		if n == 19 {
			ps = append(ps, netip.MustParsePrefix("0.0.0.0/0"))
		}
		set := NewAddrSet(ps)
		var probes []netip.Addr
		for _, p := range ps {
			lo := p.Addr()
			x := be32(lo.As4()) | uint32(uint64(1)<<(32-p.Bits())-1)
			hi := netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
			probes = append(probes, lo, lo.Prev(), hi, hi.Next())
		}
		for range 2000 {
			probes = append(probes, addr())
		}
		probes = append(probes, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"))
		for _, a := range probes {
			if !a.IsValid() {
				continue
			}
			want := false
			for _, p := range ps {
				want = want || p.Contains(a)
			}
			if got := set.Contains(a); got != want {
				t.Fatalf("%d prefixes %v: %v: got %v", n, ps, a, got)
			}
			if got := set.Contains(netip.AddrFrom16(a.As16())); got != want {
				t.Fatalf("%d prefixes %v: %v mapped: got %v", n, ps, a, got)
			}
		}
	}
}
