package rules

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// allocatedBy returns the bytes fn allocates (freed or not).
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The macro bombs are rejected without ever being built: loading one
// allocates a few megabytes at most, where expanding it would take
// gigabytes (2^29 copies of a condition for testdata/bad/bomb.yaml).
func TestMacroBombIsNotBuilt(t *testing.T) {
	// A wide bomb too: each macro uses the one before ten times.
	var wide strings.Builder
	wide.WriteString("macros:\n  w0: dst_port == 22\n")
	for k := 1; k <= 12; k++ {
		fmt.Fprintf(&wide, "  w%d: %s\n", k, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("w%d || ", k-1), 10), " || "))
	}
	wide.WriteString("rules:\n  - id: wide-bomb\n    severity: low\n    where: w12\n")
	bomb, err := os.ReadFile("testdata/bad/bomb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"bomb.yaml", bomb, `bomb.yaml:37:12: rule "bomb": where: macro "b29": expands to more than 2000 nodes (limit max_nodes)`},
		{"wide.yaml", []byte(wide.String()), `wide.yaml:18:12: rule "wide-bomb": where: macro "w12": expands to more than 2000 nodes (limit max_nodes)`},
	} {
		var err error
		alloc := allocatedBy(func() { _, err = LoadBytes(c.name, c.data) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an error with\n%s\ngot\n%v", c.name, c.want, err)
		}
		if alloc > 16<<20 {
			t.Errorf("%s: loading allocated %d MB, want < 16 MB", c.name, alloc>>20)
		}
		t.Logf("%s: %d bytes of rules, %d KB allocated to reject them", c.name, len(c.data), alloc>>10)
	}
}

// Every limit can be raised; a raised limit lets the rule through and it
// evaluates as written.
func TestLimitsCanBeRaised(t *testing.T) {
	const src = `
rules:
  - id: port-loop
    severity: low
    where: "any(0..65535, # == dst_port) && proto == 6"
`
	if _, err := LoadBytes("r.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "(max_cost;") {
		t.Fatalf("default limits: want a max_cost error, got %v", err)
	}
	set, err := Options{Limits: Limits{MaxCost: 1e6}}.LoadBytes("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules[0]
	if c := r.Cost(); c <= DefaultLimits.MaxCost || c > 1e6 {
		t.Errorf("cost %d, want between the default limit and the raised one", c)
	}
	f := &flow.Flow{DstPort: 443}
	f.SetProto(6)
	if !r.Match(f) {
		t.Error("port 443 over tcp should match")
	}
	if r.Errors.Count() != 0 {
		t.Errorf("errors: %d %s", r.Errors.Count(), r.Errors.Last())
	}
	if _, err := (Options{Limits: Limits{MaxNodes: 5}}).LoadBytes("r.yaml", []byte(src)); err == nil ||
		!strings.Contains(err.Error(), "more than the limit of 5 (max_nodes)") {
		t.Errorf("max_nodes 5: got %v", err)
	}
	if err := (Limits{MaxCost: -1}).Validate(); err == nil {
		t.Error("a negative limit should not validate")
	}
}

// The cost grows with what a condition iterates: the items of a range,
// of a list scanned by the VM, nested loops multiply.
func TestCostModel(t *testing.T) {
	cc := testCompiler(t)
	cc.limits.MaxCost = 1 << 40 // to see every cost
	cost := func(src string) int64 {
		t.Helper()
		c, errs := cc.compile(src, true)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", src, errs[0])
		}
		return c.Cost()
	}
	simple := cost("dst_port == 22")
	loop10 := cost("any(1..10, # == dst_port)")
	loop1000 := cost("any(1..1000, # == dst_port)")
	nested := cost("any(1..10, any(1..10, # == dst_port))")
	if !(simple < loop10 && loop10*50 < loop1000 && loop10*5 < nested) {
		t.Errorf("dst_port == 22: %d, 10 items: %d, 1000 items: %d, 10×10: %d", simple, loop10, loop1000, nested)
	}
	// A native membership test hashes the list; the VM scans it.
	native := cost("dst_country in blocked_countries")
	scanned := cost(`any(blocked_countries, # == dst_country) || upper(dst_country) == "KP"`)
	if native > simple+2 || scanned <= native {
		t.Errorf("native list test %d, scanned %d", native, scanned)
	}
	// A pattern taken from a field is compiled for every flow.
	if re, dyn := cost(`dst_country matches "^K"`), cost("dst_country matches src_country"); dyn < 5*re {
		t.Errorf("constant regexp %d, regexp from a field %d", re, dyn)
	}
	// A bounds check costs nothing per item; but the VM builds the range
	// of a uint16 field's test and scans it.
	if r := cost("dst_port in 1..65535"); r > simple+2 {
		t.Errorf("dst_port in 1..65535: %d", r)
	}
	if r := cost(`dst_port in 1..1000 && upper(dst_country) == "KP"`); r < 2000 {
		t.Errorf("dst_port in 1..1000 on the VM: %d, want the range built and scanned", r)
	}
	if _, errs := testCompiler(t).compile(`dst_port in 1..999999 && upper(dst_country) == "KP"`, true); len(errs) == 0 ||
		!strings.Contains(errs[0].Msg, "(max_cost;") {
		t.Errorf("a million-item range built per flow on the VM must be refused, got %v", errs)
	}
}

// A run-time error makes a condition false; it is counted per rule and
// logged once, with the rule's id.
func TestRuntimeErrorsCounted(t *testing.T) {
	var logBuf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logBuf, nil)))
	defer slog.SetDefault(prev)

	set, err := LoadBytes("r.yaml", []byte(`
rules:
  - id: city-pattern
    severity: low
    where: dst_city matches src_city
  - id: fine
    severity: low
    where: "dst_port == 22"
`))
	if err != nil {
		t.Fatal(err)
	}
	bad, fine := set.Rules[0], set.Rules[1]
	f := &flow.Flow{SrcCity: "Par(is", DstCity: "Paris", DstPort: 22}
	for range 3 {
		if bad.Match(f) {
			t.Error("a failing condition must count as false")
		}
	}
	ok := &flow.Flow{SrcCity: "^Par", DstCity: "Paris"}
	if !bad.Match(ok) {
		t.Error("a valid pattern from the flow should match")
	}
	if !fine.Match(f) || fine.Errors.Count() != 0 {
		t.Errorf("fine rule: errors %d", fine.Errors.Count())
	}
	if n := bad.Errors.Count(); n != 3 {
		t.Errorf("counted %d errors, want 3", n)
	}
	if last := bad.Errors.Last(); !strings.Contains(last, "missing closing )") {
		t.Errorf("last error %q", last)
	}
	logged := logBuf.String()
	if strings.Count(logged, "\n") != 1 || !strings.Contains(logged, "rule=city-pattern") || !strings.Contains(logged, "missing closing )") {
		t.Errorf("want one log line naming the rule and the error, got:\n%s", logged)
	}

	// A reload of the same rule carries the count and does not log again.
	set2, err := LoadBytes("r.yaml", []byte("rules:\n  - id: city-pattern\n    severity: low\n    where: dst_city matches src_city\n"))
	if err != nil {
		t.Fatal(err)
	}
	again := set2.Rules[0]
	again.Errors.Carry(bad.Errors)
	again.Match(f)
	if again.Errors.Count() != 4 || strings.Count(logBuf.String(), "\n") != 1 {
		t.Errorf("after carry: %d errors, log:\n%s", again.Errors.Count(), logBuf.String())
	}
}

// The closure compiler keeps a condition allocation-free when it has no
// error, also for conditions on the VM's side of the rule set.
func TestErrorCountingDoesNotAllocate(t *testing.T) {
	set, err := LoadBytes("bench.yaml", []byte(benchPack))
	if err != nil {
		t.Fatal(err)
	}
	flows := benchFlows(64)
	if n := testing.AllocsPerRun(10, func() {
		for i := range flows {
			for _, r := range set.Rules {
				r.Match(&flows[i])
			}
		}
	}); n != 0 {
		t.Errorf("Match allocates %v times per pass", n)
	}
	for _, r := range set.Rules {
		if r.Errors.Count() != 0 {
			t.Errorf("%s: %d errors", r.ID, r.Errors.Count())
		}
	}
}

// A list is compiled once per load, whatever the number of rules naming
// it: 1,000 rules on one 100,000-entry list of each kind.
func TestListsCompiledOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("lists:\n  big_names: [")
	for i := range 100_000 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "n%06d", i)
	}
	b.WriteString("]\n  big_ports: [")
	for i := range 100_000 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d", i+1000)
	}
	b.WriteString("]\nrules:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - id: r%d\n    severity: low\n    where: dst_country in big_names || src_port in big_ports\n", i)
	}
	data := []byte(b.String())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	set, err := LoadBytes("big.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d KB of rules: heap grew by %d MB", len(data)>>10, grown>>20)
	// One copy of each list and its hash set is ~15 MB; a copy per rule
	// would be gigabytes.
	if grown > 48<<20 {
		t.Errorf("heap grew by %d MB, want < 48 MB", grown>>20)
	}
	f := &flow.Flow{DstCountry: "n099999"}
	if !set.Rules[999].Match(f) || set.Rules[0].Match(&flow.Flow{DstCountry: "x", SrcPort: 999}) ||
		!set.Rules[500].Match(&flow.Flow{SrcPort: 1000}) {
		t.Error("membership is wrong")
	}
	runtime.KeepAlive(set)
}

func TestEmptyRuleFile(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "rules:\n", "lists:\nmacros:\nrules: []\n"} {
		_, err := LoadBytes("e.yaml", []byte(data))
		if err == nil || !strings.Contains(err.Error(), "e.yaml: defines no list, macro or rule") {
			t.Errorf("%q: got %v", data, err)
		}
		set, err := Options{AllowEmpty: true}.LoadBytes("e.yaml", []byte(data))
		if err != nil || len(set.Rules) != 0 {
			t.Errorf("%q allowed: %v", data, err)
		}
	}
	// A file of lists only is not empty.
	if _, err := LoadBytes("l.yaml", []byte("lists:\n  x: [1]\n")); err != nil {
		t.Errorf("lists only: %v", err)
	}
}

// A rule file over max_file_bytes is refused before it is read whole.
func TestFileSizeLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("lists:\n  names: [")
	for i := range 10_000 {
		fmt.Fprintf(&b, "n%d, ", i)
	}
	b.WriteString("x]\n")
	path := t.TempDir() + "/big.yaml"
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	small := Options{Limits: Limits{MaxFileBytes: 4096}}
	want := "big.yaml: larger than the limit of 4096 bytes (max_file_bytes)"
	if _, err := small.Load(path); err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Load: got %v", err)
	}
	if _, err := small.LoadBytes("big.yaml", []byte(b.String())); err == nil || err.Error() != want {
		t.Errorf("LoadBytes: got %v", err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("default limit: %v", err)
	}
}
