package rules

import (
	"strings"
	"testing"
	"time"
)

// The learning kinds decode with their defaults and their parameters.
func TestLoadLearningRules(t *testing.T) {
	set, err := LoadBytes("learn.yaml", []byte(`
rules:
  - id: base
    severity: high
    sum: bytes
    group_by: [src_addr]
    window: 10m
    threshold: 5MB
    baseline: {k: 4, seasonality: weekday, half_life: 3d, warmup: 6, max_groups: 50}
  - id: base-factor
    severity: high
    count: flows
    window: 1m
    threshold: 100
    baseline: {factor: 10}
  - id: base-rate
    severity: high
    group_by: [dst_addr]
    window: 30s
    threshold: 100Mbps
    baseline: {}
  - id: terms
    severity: medium
    group_by: [src_addr]
    new_terms: {field: [dst_country, dst_port], learning: 0s}
  - id: calls
    severity: high
    beacon: {jitter: 10%, min_count: 12, max_interval: 30m}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules
	if b := r[0].Baseline; b == nil || b.K != 4 || b.Seasonality != SeasonWeekday || b.HalfLife != 72*time.Hour ||
		b.Warmup != 6 || b.MaxGroups != 50 || r[0].Threshold != 5e6 || !r[0].Learns() {
		t.Errorf("base: %+v", r[0].Baseline)
	}
	if b := r[1].Baseline; b == nil || b.Factor != 10 || b.K != DefaultBaselineK || b.Warmup != DefaultBaselineWarmup {
		t.Errorf("base-factor: %+v", b)
	}
	if b := r[2]; b.Baseline == nil || b.Aggregate != Sum || !b.Rate || b.Scale != 8 {
		t.Errorf("base-rate: %+v", b)
	}
	r = append(r[:2], r[3:]...)
	if n := r[2].NewTerms; r[2].Aggregate != NewTermsAgg || n == nil || len(n.Fields) != 2 || n.Learning != 0 ||
		n.History != DefaultTermsHistory || r[2].Suppress != time.Hour {
		t.Errorf("terms: %+v", n)
	}
	c := r[3]
	if b := c.Beacon; c.Aggregate != BeaconAgg || b == nil || b.Jitter != 0.1 || b.MinCount != 12 ||
		b.MaxInterval != 30*time.Minute || b.MinInterval != DefaultBeaconMinIvl || len(c.GroupBy) != 3 ||
		c.GroupBy[2].Name != "dst_port" {
		t.Errorf("calls: %+v %v", b, c.GroupBy)
	}
	if r[3].Aggregate.String() != "beacon" || r[2].Aggregate.String() != "new_terms" {
		t.Error("aggregate names")
	}
}

// Mistakes in the learning kinds are errors naming the field.
func TestLearningRuleErrors(t *testing.T) {
	for _, tc := range []struct{ rule, want string }{
		{"top: {by: bytes}\n    window: 1m\n    baseline: {k: 3}", "baseline: applies to sum, count and distinct rules"},
		{"sum: bytes\n    window: 1m\n    threshold: 1MB\n    baseline: {kk: 3}", "baseline.kk: unknown field (did you mean k?)"},
		{"sum: bytes\n    window: 1m\n    threshold: 1MB\n    baseline: {seasonality: month}", `baseline.seasonality: "month" is not one of none, hour, weekday`},
		{"sum: bytes\n    window: 1m\n    threshold: 1MB\n    baseline: {factor: 0.5}", "baseline.factor: must be > 1"},
		{"sum: bytes\n    window: 1m\n    threshold: 1MB\n    baseline: {half_life: 3}", "baseline.half_life: 3: must be a duration"},
		{"new_terms: {history: 1d}", "new_terms.field: required"},
		{"new_terms: {field: dst_contry}", `new_terms.field: unknown flow field "dst_contry"`},
		{"new_terms: {field: dst_port}\n    window: 1m", "window: only rules with sum, count, distinct or top have a window"},
		{"new_terms: {field: dst_port}\n    threshold: 10", "threshold: only rules with sum, count, distinct or top have a threshold"},
		{"sum: bytes\n    window: 1m\n    threshold: 1MB\n    beacon: {}", "beacon: at most one of sum, count, distinct, top, new_terms and beacon"},
		{"beacon: {jitter: 150%}", "beacon.jitter: 150%: must be below 100%"},
		{"beacon: {min_count: 40}", `beacon.min_count: "40": must be a whole number from 3 to 24`},
		{"beacon: {min_interval: 1h, max_interval: 1m}", "beacon.max_interval: must be above min_interval"},
		{"beacon: {min_score: 2}", "beacon.min_score: 2: a score is at most 1"},
		{"beacon: {}\n    rate: true", "rate: applies to sum, count and top rules"},
		{"beacon: {}\n    message: \"{term}\"", "unknown placeholder {term}"},
	} {
		src := "rules:\n  - id: r\n    severity: low\n    " + tc.rule + "\n"
		_, err := LoadBytes("bad.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.rule, err, tc.want)
		}
	}
}
