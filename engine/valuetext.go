package engine

import (
	"math"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/rules"
)

// valueText writes a value or threshold of r for a message as the tuning
// report and rule files spell it: with the rule's unit ("31.62MB",
// "2.2kpps", "1.5Gbps"). Counts (flows, distinct values) stay exact when
// whole, and get four significant digits otherwise (a rate of flows).
// The alert's JSON value stays the number.
func valueText(v float64, r *rules.Rule) string {
	u := r.ValueUnit()
	if u == rules.UnitNone && v == math.Trunc(v) {
		return alert.FormatNumber(v)
	}
	return rules.FormatQuantity(v, u)
}
