package rules

import "testing"

// Values are spelled as the tuning report and rule files spell them, and
// read back by ParseQuantity to the same value at four digits.
func TestFormatQuantity(t *testing.T) {
	for _, c := range []struct {
		v    float64
		u    Unit
		want string
	}{
		{31617894, UnitBytes, "31.62MB"},
		{118, UnitBytes, "118B"},
		{1017408, UnitBitRate, "1.017Mbps"},
		{2200, UnitPacketRate, "2.2kpps"},
		{0.2, UnitPacketRate, "0.2pps"},
		{5e7, UnitByteRate, "50MB/s"},
		{150, UnitNone, "150"},
		{12345, UnitNone, "12.35k"},
		{0.2, UnitPercent, "20%"},
		{0, UnitBytes, "0B"},
	} {
		got := FormatQuantity(c.v, c.u)
		if got != c.want {
			t.Errorf("FormatQuantity(%v, %v) = %q, want %q", c.v, c.u, got, c.want)
			continue
		}
		q, err := ParseQuantity(got)
		if err != nil || q.Unit != c.u {
			t.Errorf("ParseQuantity(%q) = %+v, %v; want unit %v", got, q, err, c.u)
		}
	}
}
