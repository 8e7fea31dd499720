package rules

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

const testLists = `
lists:
  internal_nets: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "fd00::/8"]
  admin_ports: [22, 23, 3389, 5900]
  many_ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 443]
  blocked_countries: [KP, IR]
  many_countries: [AA, BB, CC, DD, EE, FF, GG, HH, II, JJ, KP]
  threat_lists: [spamhaus, abuse_ch]
  no_nets: {type: cidr, items: []}
  asns: {type: number, items: [64500, 64501]}
macros:
  outbound: "src_addr in internal_nets && !(dst_addr in internal_nets)"
  tcp: proto == 6
  big: bytes > 1000000
`

func testCompiler(t testing.TB) *condCompiler {
	t.Helper()
	l := newLoader(Options{})
	l.add("lists.yaml", []byte(testLists))
	if _, err := l.run(); err != nil {
		t.Fatal(err)
	}
	return l.cc
}

func testFlows() []*flow.Flow {
	mk := func(src, dst string, sp, dp uint16, proto uint8, flags uint8, bytes uint64) *flow.Flow {
		f := &flow.Flow{SrcPort: sp, DstPort: dp, Bytes: bytes, Packets: bytes/1000 + 1}
		if src != "" {
			f.SrcAddr = netip.MustParseAddr(src)
		}
		if dst != "" {
			f.DstAddr = netip.MustParseAddr(dst)
		}
		f.SetProto(proto)
		f.SetTCPFlags(flags)
		return f
	}
	fs := []*flow.Flow{
		mk("10.1.2.3", "203.0.113.9", 50000, 443, 6, flow.TCPSyn|flow.TCPAck, 5_000_000),
		mk("10.1.2.3", "10.9.9.9", 50001, 22, 6, flow.TCPSyn, 60),
		mk("198.51.100.23", "10.20.30.40", 40000, 23, 6, flow.TCPSyn, 40),
		mk("192.168.1.5", "8.8.8.8", 5353, 53, 17, 0, 120),
		mk("fd00::1", "2001:db8::1", 1, 3389, 6, flow.TCPSyn|flow.TCPRst, 1<<63+5),
		mk("::ffff:10.0.0.1", "::ffff:1.2.3.4", 0, 0, 1, 0, 0),
		mk("", "", 0, 0, 0, 0, 0), // nothing known
		mk("172.16.0.1", "172.32.0.1", 65535, 65535, 200, 0xff, 999),
	}
	fs[0].DstCountry, fs[0].SrcLists, fs[0].DstLists = "US", []string{"spamhaus"}, []string{"tor"}
	fs[1].DstCountry, fs[1].SrcCountry = "KP", "DE"
	fs[2].SrcCountry, fs[2].SrcLists, fs[2].SrcASN = "IR", []string{"abuse_ch", "spamhaus"}, 64500
	fs[3].DstCountry, fs[3].Direction, fs[3].SrcCity = "US", flow.DirectionOutbound, "Zürich"
	fs[4].DstCountry, fs[4].DstASN, fs[4].TimeFlowEnd = "KP", 64501, time.Unix(1700000000, 0)
	fs[7].SrcCountry, fs[7].DstCountry, fs[7].SamplingRate = "II", "AA", 100
	return fs
}

// The closure compiler must agree with expr's own VM on every condition
// and every flow: this is its correctness guarantee.
func TestClosuresAgreeWithExpr(t *testing.T) {
	cc := testCompiler(t)
	flows := testFlows()
	hostile := hostileFlows(500, 3)
	for i := range hostile {
		flows = append(flows, &hostile[i])
	}
	for _, tc := range []struct {
		src    string
		native bool
	}{
		{"true", true},
		{"proto == 6", true},
		{"6 == proto", true},
		{"proto != 6", true},
		{"proto == 6 && syn && !ack", true},
		{"tcp and syn and not ack", true},
		{"syn || rst", true},
		{"syn == ack", true},
		{"syn != rst", true},
		{"dst_port < 1024", true},
		{"1024 > dst_port", true},
		{"dst_port <= 23 and dst_port >= 22", true},
		{"dst_port in [22, 23]", true},
		{"dst_port not in [22, 23]", true},
		{"dst_port in admin_ports", true},
		{"dst_port in many_ports", true},
		{"dst_port not in admin_ports", true},
		{"dst_port in 20..25", true},
		{"src_asn in asns || dst_asn in asns", true},
		{"len(admin_ports) == 4", true},
		{"src_addr in internal_nets", true},
		{"not (dst_addr in internal_nets)", true},
		{"outbound", true},
		{"outbound && dst_port == 23", true},
		{"src_addr in no_nets", true},
		{`src_addr == "10.1.2.3"`, true},
		{`"10.1.2.3" == src_addr`, true},
		{`src_addr != "10.1.2.3"`, true},
		{`src_addr == "10.0.0.1"`, true},
		{`src_addr == "fd00::1"`, true},
		{"src_addr == dst_addr", true},
		{"src_addr != dst_addr", true},
		{`in_cidr(src_addr, "10.0.0.0/8")`, true},
		{`in_cidr(dst_addr, "2001:db8::/32")`, true},
		{`in_cidr(dst_addr, "1.2.3.4")`, true},
		{"dst_country in blocked_countries", true},
		{"src_country in many_countries", true},
		{"src_country not in blocked_countries", true},
		{`dst_country in ["KP", "IR"]`, true},
		{`dst_country == "KP" || src_country == "IR"`, true},
		{`"spamhaus" in src_lists`, true},
		{`dst_country > "M"`, true},
		{`dst_country <= src_country`, true},
		{`proto_name == "tcp"`, true},
		{`proto_name startsWith "t"`, true},
		{`proto_name endsWith "cp"`, true},
		{`src_city contains "ür"`, true},
		{`dst_country matches "^(KP|IR)$"`, true},
		{`direction == "outbound"`, true},
		{"len(src_lists) > 1", true},
		{"len(proto_name) == 3", true},
		// Lengths of fields read at their offset, against every operator
		// and constants at and past the ends of a length's range.
		{"len(src_lists) > 0", true},
		{"0 < len(dst_lists)", true},
		{"len(src_lists) == 0", true},
		{"len(src_lists) >= 1", true},
		{"len(src_lists) < 2", true},
		{"len(src_lists) <= 0", true},
		{"len(src_lists) != 1", true},
		{"len(src_lists) > -1", true},
		{"len(src_lists) >= -5", true},
		{"len(src_lists) < 0", true},
		{"len(src_lists) <= -1", true},
		{"len(src_lists) == -1", true},
		{"len(src_lists) != -1", true},
		{"len(dst_country) == 2", true},
		{"len(dst_country) <= 9223372036854775807", true},
		{"len(dst_country) > 9223372036854775807", true},
		{"len(dst_country) < 9223372036854775807", true},
		{"len(dst_country) != 9223372036854775807", true},
		{"len(dst_country) > 1.5", true},
		// String sets packed in words, and not.
		{`dst_country in ["", "KP"]`, true},
		{`dst_country in [""]`, true},
		{`dst_country in ["KPX", "K"]`, true},
		{`src_city in ["Zürich", "Zurich"]`, true},
		{`src_city in ["abcdefghi"]`, true},
		{`dst_country not in blocked_countries`, true},
		{"bytes > 1000000", true},
		{"big", true},
		{"bytes > 1e6", true},
		{"bytes / packets > 100", true},
		{"bytes / 2 >= 30.5", true},
		{"bytes * 8 > 8000", true},
		{"bytes - packets > 0", true},
		{"bytes + 1 > 1", true},
		{"proto + proto > 255", true},
		{"dst_port % 2 == 1", true},
		{"dst_port % 7 > 3", true},
		{"bytes ** 0.5 > 100", true},
		{"-1 < 0 && -dst_port < 0", false}, // uint16 negation wraps in expr
		{"-(dst_port + 0) < 0", true},
		{"-(bytes / 2.0) < 0", true},
		{"src_port + dst_port == 65535 * 2", true},
		{"(syn ? dst_port : src_port) > 1000", true},
		{`(syn ? "a" : "b") == "a"`, true},
		{"sampling_rate * 1.5 > 100", true},
		{"tcp_flags == 0xff", true},
		{"dst_port == 443.0", true},
		{"sequence_num == 0", true},
		{"bytes < 0", true},
		{"bytes == 5000000", true},
		{"packets != 1 && !rst", true},
		{"src_port >= 65535", true},
		{"dst_asn == 64501", true},
		{"in_if == 0", true},
		{"src_port in [0, 65535]", true},
		{"dst_port in [0, 1, 5353, 65535]", true},
		{"sampling_rate in [100, 100000000]", true},
		{"src_asn in [64500, 64501, 64502]", true},
		{"tcp_flags in [2, 18, 255]", true},
		{"bytes in [60, 120, 999]", true},
		{"proto in [1, 6, 17, 58]", true},
		{"dst_addr in internal_nets", true},
		{`addr_in_list(dst_addr, internal_nets)`, true},
		{`"x" + dst_country == "xKP"`, false},
		{`any(threat_lists, # in dst_lists)`, false},
		{`upper(src_country) == "IR"`, false},
		{"time_flow_end > time_flow_start", false},
		{`dst_port % (src_port + 1) == 0`, false},
		{"src_net == dst_net", false},
		{`(dst_country ?? "x") == "KP"`, false},
	} {
		c, errs := cc.compile(tc.src, true)
		if len(errs) > 0 {
			t.Errorf("%s: %v", tc.src, errs[0])
			continue
		}
		if c.Native() != tc.native {
			t.Errorf("%s: native %v, want %v", tc.src, c.Native(), tc.native)
		}
		for i, f := range flows {
			want, err := c.runVM(f)
			if err != nil {
				t.Errorf("%s: flow %d: expr: %v", tc.src, i, err)
				continue
			}
			if got := c.Eval(f); got != want {
				t.Errorf("%s: flow %d: closure %v, expr %v", tc.src, i, got, want)
			}
		}
	}
}

// A condition the closure compiler cannot handle still evaluates, on the
// expr VM.
func TestFallbackEvaluates(t *testing.T) {
	cc := testCompiler(t)
	c, errs := cc.compile(`any(threat_lists, # in dst_lists) || upper(src_country) == "IR"`, true)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if c.Native() {
		t.Fatal("expected the expr fallback")
	}
	f := testFlows()
	if c.Eval(f[0]) || !c.Eval(f[2]) || c.Eval(f[6]) {
		t.Errorf("fallback results wrong")
	}
	f[0].DstLists = []string{"abuse_ch"}
	if !c.Eval(f[0]) {
		t.Errorf("fallback: threat list not found")
	}
}

func TestMatchWithExceptions(t *testing.T) {
	set, err := LoadBytes("m.yaml", []byte(testLists+`
rules:
  - id: ssh
    severity: low
    where: dst_port == 22 || dst_port == 23
    exceptions: ["src_addr in internal_nets", "dst_country == 'KP'"]
  - id: all-but
    severity: low
    exceptions: "proto == 17"
  - id: all
    severity: low
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := testFlows()
	for _, tc := range []struct {
		rule int
		want []bool
	}{
		{0, []bool{false, false, true, false, false, false, false, false}},
		{1, []bool{true, true, true, false, true, true, true, true}},
		{2, []bool{true, true, true, true, true, true, true, true}},
	} {
		r := set.Rules[tc.rule]
		for i, f := range fs {
			if got := r.Match(f); got != tc.want[i] {
				t.Errorf("%s: flow %d: %v", r.ID, i, got)
			}
		}
	}
}

func TestListTypes(t *testing.T) {
	cc := testCompiler(t)
	for name, want := range map[string]ListKind{
		"internal_nets": ListCIDR, "admin_ports": ListNumber, "blocked_countries": ListString,
		"no_nets": ListCIDR, "asns": ListNumber,
	} {
		if got := cc.lists[name].kind; got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	// A list is only usable where its type fits.
	for _, src := range []string{"dst_port in blocked_countries", "dst_country in admin_ports", "dst_port in internal_nets"} {
		if _, errs := cc.compile(src, true); len(errs) == 0 {
			t.Errorf("%s: want a type error", src)
		}
	}
}

func TestAddrSet(t *testing.T) {
	var ps []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/24", "192.168.1.0/24", "0.0.0.0/32",
		"255.255.255.255/32", "2001:db8::/32", "fd00::/8", "::/128", "2001:db8:1::/48"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	set := NewAddrSet(ps)
	if len(set.v4) != 4 || len(set.v6) != 3 {
		t.Errorf("merge: v4 %v v6 %d", set.v4, len(set.v6))
	}
	for addr, want := range map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": false, "9.255.255.255": false,
		"192.168.0.7": true, "192.168.1.255": true, "192.168.2.0": false, "0.0.0.0": true, "0.0.0.1": false,
		"255.255.255.255": true, "255.255.255.254": false, "::ffff:10.2.3.4": true,
		"2001:db8:ffff::1": true, "2001:db9::": false, "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": true,
		"fe00::": false, "::": true, "::1": false,
	} {
		if got := set.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %v", addr, got)
		}
	}
	if set.Contains(netip.Addr{}) || (*AddrSet)(nil).Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("invalid address or nil set must not match")
	}
	all := NewAddrSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	if !all.Contains(netip.MustParseAddr("1.2.3.4")) || !all.Contains(netip.MustParseAddr("ffff::1")) {
		t.Error("/0 must match everything")
	}
}
