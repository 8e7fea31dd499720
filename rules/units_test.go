package rules

import (
	"testing"
	"time"
)

func TestParseQuantity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Quantity
		err  bool
	}{
		{"100", Quantity{100, UnitNone}, false},
		{"1.5k", Quantity{1500, UnitNone}, false},
		{"10K", Quantity{10e3, UnitNone}, false},
		{"2M", Quantity{2e6, UnitNone}, false},
		{"1G", Quantity{1e9, UnitNone}, false},
		{"1_000", Quantity{1000, UnitNone}, false},
		{"1e6", Quantity{1e6, UnitNone}, false},
		{"500MB", Quantity{500e6, UnitBytes}, false},
		{"500 MB", Quantity{500e6, UnitBytes}, false},
		{"1KB", Quantity{1000, UnitBytes}, false},
		{"2GB", Quantity{2e9, UnitBytes}, false},
		{"1TB", Quantity{1e12, UnitBytes}, false},
		{"1KiB", Quantity{1024, UnitBytes}, false},
		{"2MiB", Quantity{2 << 20, UnitBytes}, false},
		{"1GiB", Quantity{1 << 30, UnitBytes}, false},
		{"64B", Quantity{64, UnitBytes}, false},
		{"1Gbps", Quantity{1e9, UnitBitRate}, false},
		{"100Mbps", Quantity{100e6, UnitBitRate}, false},
		{"10kbps", Quantity{10e3, UnitBitRate}, false},
		{"100kpps", Quantity{100e3, UnitPacketRate}, false},
		{"1Mpps", Quantity{1e6, UnitPacketRate}, false},
		{"50pps", Quantity{50, UnitPacketRate}, false},
		{"50MB/s", Quantity{50e6, UnitByteRate}, false},
		{"1MiB/s", Quantity{1 << 20, UnitByteRate}, false},
		{"20%", Quantity{0.2, UnitPercent}, false},
		{"0.5", Quantity{0.5, UnitNone}, false},
		{"", Quantity{}, true},
		{"MB", Quantity{}, true},
		{"10 parsecs", Quantity{}, true},
		{"10m", Quantity{}, true}, // milli-anything is no unit here
		{"1.2.3", Quantity{}, true},
	} {
		got, err := ParseQuantity(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "1m": time.Minute, "1h": time.Hour, "1d": 24 * time.Hour,
		"7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute, "250ms": 250 * time.Millisecond,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1", "d", "-1m", "1w", "1.5d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

func TestTemplate(t *testing.T) {
	vals := map[string]string{"src_addr": "10.0.0.1", "value": "150", "window": "1m0s"}
	lookup := func(n string) (string, bool) { v, ok := vals[n]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"{src_addr} probed {value} ports within {window}", "10.0.0.1 probed 150 ports within 1m0s"},
		{"no placeholders", "no placeholders"},
		{"{{literal}} {value}", "{literal} 150"},
		{"}} and {{", "} and {"},
		{"a lone } stays", "a lone } stays"},
		{"{unknown} shows", "{unknown} shows"},
		{"", ""},
		{"{value}{value}", "150150"},
	} {
		tmpl, err := ParseTemplate(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := string(tmpl.Render(nil, lookup)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		if tmpl.String() != tc.in {
			t.Errorf("String() = %q", tmpl.String())
		}
	}
	for in, off := range map[string]int{"abc {oops": 4, "{}": 0, "x {a b}": 2, "{a-b}": 0} {
		_, err := ParseTemplate(in)
		te, ok := err.(*TemplateError)
		if !ok || te.Offset != off {
			t.Errorf("%q: got %v, want an error at offset %d", in, err, off)
		}
	}
	tmpl, _ := ParseTemplate("{src_addr} sent {value}")
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = tmpl.Render(buf[:0], lookup) }); n != 0 {
		t.Errorf("Render allocates %v times", n)
	}
	if names := tmpl.Names(); len(names) != 2 || names[0] != "src_addr" || names[1] != "value" {
		t.Errorf("Names() = %v", names)
	}
}
