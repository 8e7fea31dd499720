package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// hostileFlows are flows no exporter should send: every field drawn from
// edge values and at random, flags that disagree with the booleans,
// unknown, IPv6 and 4-in-6 addresses, odd strings and lists.
func hostileFlows(n int, seed uint64) []flow.Flow {
	r := rand.New(rand.NewPCG(seed, 99))
	addrs := []string{"10.0.0.0", "10.255.255.255", "11.0.0.0", "9.255.255.255", "172.16.0.1", "172.32.0.1",
		"192.168.0.0", "192.169.0.0", "198.51.100.23", "192.0.2.10", "0.0.0.0", "255.255.255.255",
		"::ffff:10.1.2.3", "::ffff:8.8.8.8", "fd00::1", "fc00::", "fe80::1", "2001:db8::1", "::", "::1"}
	addr := func() netip.Addr {
		switch r.IntN(4) {
		case 0:
			return netip.Addr{} // unknown
		case 1:
			return netip.MustParseAddr(addrs[r.IntN(len(addrs))])
		case 2:
			var b [16]byte
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	strs := []string{"", "K", "KP", "kp", "IR", "US", "KPX", "K\x00", "\xff\xfe", "\x00KP", "Zürich", "^B", "(", "spamhaus", "SY", "CU", "DE"}
	str := func() string { return strs[r.IntN(len(strs))] }
	list := func() []string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		l := make([]string, r.IntN(4)+1)
		for i := range l {
			l[i] = str()
		}
		return l
	}
	u16 := func() uint16 {
		return []uint16{0, 1, 17, 19, 22, 23, 53, 123, 443, 2048, 2303, 3389, 32768, 65535, uint16(r.IntN(65536))}[r.IntN(15)]
	}
	u64 := func() uint64 {
		return []uint64{0, 1, 40, 41, 400, 10000, math.MaxUint64, 1 << 63, r.Uint64()}[r.IntN(9)]
	}
	fs := make([]flow.Flow, n)
	for i := range fs {
		f := &fs[i]
		f.SrcAddr, f.DstAddr, f.NextHop = addr(), addr(), addr()
		f.SrcPort, f.DstPort = u16(), u16()
		f.SetProto([]uint8{0, 1, 6, 6, 17, 17, 58, 255}[r.IntN(8)])
		f.SetTCPFlags(uint8(r.IntN(256)))
		if r.IntN(4) == 0 { // booleans that disagree with the flags
			f.SYN, f.ACK, f.RST, f.FIN = r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(2) == 0
		}
		f.Bytes, f.Packets = u64(), u64()
		f.SrcASN, f.DstASN = []uint32{0, 64500, 64501, math.MaxUint32}[r.IntN(4)], r.Uint32()
		f.SrcCountry, f.DstCountry, f.SrcCity, f.DstCity = str(), str(), str(), str()
		f.SrcLists, f.DstLists = list(), list()
		f.SrcInternal, f.DstInternal = r.IntN(2) == 0, r.IntN(2) == 0
		f.Direction = []string{"", flow.DirectionOutbound, "inbound", "x"}[r.IntN(4)]
	}
	return fs
}

// randomPack writes n rules with random conditions over the test lists:
// and, or and not nested, macros and their negations, inline and named
// sets, conditions on the expr VM, exceptions, and rules repeating an
// earlier rule's conditions whole or in part.
func randomPack(r *rand.Rand, n int) string {
	atoms := []string{
		"outbound", "tcp", "big", "syn", "ack", "rst", "proto == 17", "dst_port in admin_ports",
		"src_port in many_ports", "dst_port in [22, 23]", "dst_port in 2048..2303", "src_country in blocked_countries",
		"dst_country in many_countries", `dst_country == "KP"`, `dst_country != ""`, `"spamhaus" in src_lists`,
		"len(dst_lists) > 0", "len(src_lists) == 0", "src_addr in internal_nets", "dst_addr in internal_nets",
		"src_addr in no_nets", `in_cidr(dst_addr, "10.0.0.0/8")`, `src_addr == "198.51.100.23"`,
		"bytes / packets > 400", "src_asn in asns", "dst_asn != 0", "packets <= 40", "src_port == 0 && dst_port == 0",
		"src_internal", "!dst_internal",
	}
	const onVM = "src_city matches dst_city" // on the expr VM: errors on "("
	var cond func(depth int) string
	cond = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			a := atoms[r.IntN(len(atoms))]
			if r.IntN(60) == 0 {
				a = onVM
			}
			if r.IntN(4) == 0 {
				return "!(" + a + ")"
			}
			return a
		}
		x, y := cond(depth-1), cond(depth-1)
		switch r.IntN(5) {
		case 0:
			return "!(" + x + " && " + y + ")"
		case 1:
			return "!(" + x + " || " + y + ")"
		case 2:
			return "(" + x + " || " + y + ")"
		}
		return "(" + x + " && " + y + ")"
	}
	type rc struct {
		where string
		excs  []string
	}
	var rs []rc
	var b strings.Builder
	b.WriteString(testLists + "rules:\n")
	for i := range n {
		var c rc
		switch k := r.IntN(10); {
		case k == 0 && len(rs) > 0:
			c = rs[r.IntN(len(rs))] // the same conditions
		case k == 1 && len(rs) > 0:
			c = rc{where: rs[r.IntN(len(rs))].where} // the same where
		case k == 2 && len(rs) > 0 && rs[len(rs)-1].where != "":
			c = rc{where: rs[len(rs)-1].where + " && " + cond(1)} // a longer one
		default:
			if r.IntN(8) != 0 {
				c.where = cond(2 + r.IntN(2))
			}
			for range r.IntN(3) {
				c.excs = append(c.excs, cond(1+r.IntN(2)))
			}
		}
		rs = append(rs, c)
		fmt.Fprintf(&b, "  - id: r%d\n    severity: low\n", i)
		if c.where != "" {
			fmt.Fprintf(&b, "    where: %q\n", c.where)
		}
		if len(c.excs) > 0 {
			b.WriteString("    exceptions:\n")
			for _, e := range c.excs {
				fmt.Fprintf(&b, "      - %q\n", e)
			}
		}
	}
	return b.String()
}

// Mask and Match agree on random rule sets over hostile flows.
func TestMaskAgreesOnRandomRules(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for k := range 20 {
		src := randomPack(r, 40+r.IntN(120))
		set, err := Options{Limits: Limits{MaxCost: 1 << 20}}.LoadBytes("random.yaml", []byte(src))
		if err != nil {
			t.Fatalf("pack %d: %v\n%s", k, err, src)
		}
		for _, r := range set.Rules {
			r.Errors.logged.Store(true) // the hostile cities fail the VM's regexps: count, do not log
		}
		flows := hostileFlows(2000, uint64(k))
		for _, f := range testFlows() {
			flows = append(flows, *f)
		}
		agree(t, set.Rules, flows)
		// Every jump of the program goes forward: a flow runs each step
		// at most once.
		for i, s := range NewMatcher(set.Rules).prog {
			if s.kind != sSet && int(s.to) <= i {
				t.Fatalf("pack %d: step %d (kind %d) goes to %d", k, i, s.kind, s.to)
			}
		}
	}
}

// The bundled pack and the benchmark's agree on hostile flows too.
func TestMaskAgreesOnHostileFlows(t *testing.T) {
	bench, err := LoadBytes("bench.yaml", []byte(benchPack))
	if err != nil {
		t.Fatal(err)
	}
	flows := hostileFlows(20000, 1)
	if hits := agree(t, loadPack(t).Rules, flows); hits == 0 {
		t.Fatal("no rule of the pack matched")
	}
	agree(t, bench.Rules, flows)
}

// Mask's program tests each node once per path: rules starting alike share
// their first tests, rules with the same conditions set their bits in one
// step.
func TestMaskSharesTests(t *testing.T) {
	set, err := LoadBytes("share.yaml", []byte(testLists+`rules:
  - {id: a, severity: low, where: "tcp && syn && !ack"}
  - {id: b, severity: low, where: "tcp && syn && !ack"}
  - {id: c, severity: low, where: "tcp && syn && ack", exceptions: [outbound]}
  - {id: d, severity: low, where: "!tcp"}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMatcher(set.Rules)
	// tcp (d wants it false), syn, ack (c wants it true, a and b false),
	// then c's exception: outbound is src_addr in internal_nets &&
	// !(dst_addr in internal_nets), and c counts a flow when either fails.
	var tests, sets int
	for _, s := range m.prog {
		switch s.kind {
		case sSet:
			sets++
		case sJump:
		default:
			tests++
		}
	}
	if tests != 5 || sets != 3 {
		t.Errorf("%d tests and %d sets, want 5 and 3: %+v", tests, sets, m.prog)
	}
	agree(t, set.Rules, hostileFlows(2000, 2))
}

// A program has a step per leaf of its rules' conditions, and a set and a
// jump per trie node at most: conditions at the limits keep it bounded.
func TestMaskProgramBounded(t *testing.T) {
	var tree func(op string, lo, hi int) string
	tree = func(op string, lo, hi int) string { // balanced, as deep as the limits allow
		if hi-lo == 1 {
			return fmt.Sprintf("dst_port == %d", lo)
		}
		m := (lo + hi) / 2
		return "(" + tree(op, lo, m) + " " + op + " " + tree(op, m, hi) + ")"
	}
	const leaves = 256
	and, or := tree("&&", 0, leaves), tree("||", 0, leaves)
	src := testLists + fmt.Sprintf(`rules:
  - {id: and, severity: low, where: %q}
  - {id: or, severity: low, where: %q}
  - {id: both, severity: low, where: %q, exceptions: [%q]}
`, and, or, or, and)
	set, err := Options{Limits: Limits{MaxCost: 1 << 20}}.LoadBytes("big.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMatcher(set.Rules)
	// The leaves of and, of or (both's where is the same: one path), and
	// of both's exception.
	if max := 3*leaves + 2*len(set.Rules); len(m.prog) > max {
		t.Errorf("%d steps for %d leaves, want at most %d", len(m.prog), 3*leaves, max)
	}
	flows := hostileFlows(2000, 6)
	for i := range flows {
		flows[i].DstPort = uint16(i % (leaves + 8))
	}
	if hits := agree(t, set.Rules, flows); hits == 0 {
		t.Fatal("no rule matched")
	}
}
