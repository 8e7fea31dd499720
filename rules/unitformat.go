package rules

import "strconv"

// ValueUnit is the unit of the values the rule compares with its
// threshold: bytes, bits, bytes or packets per second, or a plain count
// (flows, flows per second, distinct values). The loader lets only these
// combinations of aggregate, metric, scale and rate through.
func (r *Rule) ValueUnit() Unit {
	switch {
	case r.Aggregate == Distinct || r.Metric == nil:
		return UnitNone
	case r.Metric.Name == "bytes" && r.Scale == 8:
		return UnitBitRate
	case r.Metric.Name == "bytes" && r.Rate:
		return UnitByteRate
	case r.Metric.Name == "bytes":
		return UnitBytes
	case r.Metric.Name == "packets" && r.Rate:
		return UnitPacketRate
	}
	return UnitNone
}

// formatSuffixes are the suffixes FormatQuantity writes, largest first and
// ending with the unit itself: the 1000-based ones a rule file reads back.
var formatSuffixes = map[Unit][]struct {
	mult float64
	name string
}{
	UnitNone:       {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}},
	UnitBytes:      {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}, {1, "B"}},
	UnitBitRate:    {{1e12, "Tbps"}, {1e9, "Gbps"}, {1e6, "Mbps"}, {1e3, "kbps"}, {1, "bps"}},
	UnitByteRate:   {{1e12, "TB/s"}, {1e9, "GB/s"}, {1e6, "MB/s"}, {1e3, "KB/s"}, {1, "B/s"}},
	UnitPacketRate: {{1e9, "Gpps"}, {1e6, "Mpps"}, {1e3, "kpps"}, {1, "pps"}},
}

// FormatQuantity spells v in unit u as a rule file would, with the largest
// suffix that keeps it at 1 or more and four significant digits:
// 31617894 bytes is "31.62MB", 2200 packets per second "2.2kpps", 150
// "150". A percentage is written as one ("20%").
func FormatQuantity(v float64, u Unit) string {
	if u == UnitPercent {
		return significant4(v*100) + "%"
	}
	for _, s := range formatSuffixes[u] {
		if v >= s.mult || -v >= s.mult || s.mult == 1 {
			return significant4(v/s.mult) + s.name
		}
	}
	return significant4(v)
}

// significant4 writes v rounded to four significant digits, without an
// exponent or trailing zeros.
func significant4(v float64) string {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	if err != nil {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}
