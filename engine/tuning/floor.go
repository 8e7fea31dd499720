package tuning

import (
	"time"

	"github.com/flowguard/flowguard/rules"
)

// DefaultMinLowerSpan is the shortest input from which the report suggests
// lowering a threshold: an hour holds a busy moment that a minute does
// not, and a threshold lowered to a quiet minute's background fires on
// the first busy one.
const DefaultMinLowerSpan = time.Hour

// floorDivisor bounds one lowering: a suggestion is never below the current
// threshold divided by it.
const floorDivisor = 10

// Unit floors: below these a rule no longer tells the behaviour it names
// from ordinary traffic (ten ports are a browser, not a scan; a megabyte is
// a web page, not an exfiltration), whatever a quiet input suggests.
var unitFloors = map[rules.Unit]float64{
	rules.UnitNone:       10,  // distinct values, flows, or packets
	rules.UnitBytes:      1e6, // 1MB
	rules.UnitBitRate:    1e6, // 1Mbps
	rules.UnitByteRate:   1e5, // 100KB/s
	rules.UnitPacketRate: 100, // 100pps
}

// Floor is the lowest threshold the report suggests for r: the larger of
// its unit's floor (10 for counts and distinct values, 1MB, 1Mbps,
// 100KB/s, 100pps; 1 flow per second for a rate of flows) and a tenth of
// its current threshold, but never above the current threshold.
func Floor(r *rules.Rule) float64 {
	u := r.ValueUnit()
	f := unitFloors[u]
	if u == rules.UnitNone && r.Rate {
		f = 1
	}
	f = max(f, r.Threshold/floorDivisor)
	if r.Threshold > 0 {
		f = min(f, r.Threshold)
	}
	return f
}
