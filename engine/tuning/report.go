package tuning

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// Totals describes the input of a replay. The caller counts it (Add does
// so from the flows) and gives it to Report.
type Totals struct {
	Flows        uint64    `json:"flows"`
	Packets      uint64    `json:"packets"`
	Bytes        uint64    `json:"bytes"`
	First        time.Time `json:"first,omitzero"` // earliest flow event time
	Last         time.Time `json:"last,omitzero"`  // latest flow event time
	DecodeErrors uint64    `json:"decode_errors"`  // inputs that could not be decoded
	// Set by the caller from the engine's time stats (README "Time").
	Late   uint64 `json:"late"`   // flows beyond the allowed lateness of a rule's window
	Future uint64 `json:"future"` // flows stamped past the watermark plus the tolerance, clamped
}

// Add counts a batch of flows: their number, packets, bytes and the span
// of their event times. It has the shape of an ingest.Handler's body.
func (t *Totals) Add(batch []flow.Flow) {
	for i := range batch {
		f := &batch[i]
		t.Flows++
		t.Packets += f.Packets
		t.Bytes += f.Bytes
		et := f.EventTime()
		if et.IsZero() {
			continue
		}
		if t.First.IsZero() || et.Before(t.First) {
			t.First = et
		}
		if et.After(t.Last) {
			t.Last = et
		}
	}
}

// Span is the time between the first and the last flow.
func (t Totals) Span() time.Duration {
	if t.First.IsZero() {
		return 0
	}
	return t.Last.Sub(t.First)
}

// Report is the tuning summary of one replay.
type Report struct {
	Totals ReportTotals `json:"totals"`
	Rules  []RuleReport `json:"rules"`
	// Truth compares the alerts with what the input is known to hold
	// (replay --truth); absent without one.
	Truth *TruthReport `json:"truth,omitempty"`
}

// ReportTotals is Totals with the span spelled out for JSON readers.
type ReportTotals struct {
	Totals
	SpanSeconds float64 `json:"span_seconds"`
}

// RuleReport is what one rule did over the input.
type RuleReport struct {
	Rule      string `json:"rule"`
	Aggregate string `json:"aggregate"` // match, sum, distinct, top
	// Threshold is the rule's threshold as values compare with it (bits
	// per second for a Gbps rule); ThresholdText is it in the rule's
	// unit, as a rule file would spell it.
	Threshold     float64 `json:"threshold"`
	ThresholdText string  `json:"threshold_text"`
	Unit          string  `json:"unit"` // what values count: bytes, bps, pps, flows/s, the distinct field
	Window        string  `json:"window"`

	// Observations counts the values seen (one per matching flow).
	Observations uint64 `json:"observations"`
	Alerts       uint64 `json:"alerts"`
	// FiredGroups counts the distinct groups that fired; Fired names the
	// highest of them.
	FiredGroups int          `json:"fired_groups"`
	Fired       []GroupValue `json:"fired"`
	// Groups counts the groups tracked. When GroupsEvicted is not zero
	// there were more, and the percentiles describe the Groups highest.
	Groups        int    `json:"groups"`
	GroupsEvicted uint64 `json:"groups_evicted"`
	// Percentiles of the groups' peak values (each group's highest value
	// over the input). Nil for per-flow rules and rules that saw nothing.
	Percentiles *Percentiles `json:"percentiles,omitempty"`
	// NearMisses are the highest groups that did not fire, highest first.
	NearMisses []GroupValue `json:"near_misses"`
	// Suggestion is a threshold for this rule; nil for per-flow rules
	// and rules that saw nothing.
	Suggestion *Suggestion `json:"suggestion,omitempty"`
	// Learned is what a learning rule learned of every group (see
	// AddLearned); nil for other rules.
	Learned *engine.LearnedSummary `json:"learned,omitempty"`
}

// GroupValue is one group with its peak value.
type GroupValue struct {
	Group  map[string]string `json:"group"`
	Peak   float64           `json:"peak"`
	Ratio  float64           `json:"ratio"` // Peak / threshold (0 without a threshold)
	Alerts uint64            `json:"alerts,omitempty"`
}

// Percentiles of the groups' peak values (nearest rank).
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Suggestion is a threshold worked out from the input.
//
// The method: the background peak B is the highest value any group that
// did not fire reached; the weakest fired peak F is the lowest peak among
// the groups that fired. The suggested threshold is the smallest round
// number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten) above
// B × 1.2, so that the background stays quiet with 20% headroom. When
// groups fired, it must also be at most F, so that every one of them still
// fires; when the 20% does not fit between B and F, the smallest round
// number above B that is at most F is taken (or F itself), and the basis
// says the margin is thin. When B ≥ F no threshold separates them and the
// current one is kept: the rule needs an exception or a finer group_by,
// not a new number.
//
// Quiet is the smallest round number at least 1.2 × the highest peak of all
// groups, fired or not: the threshold at which this input raises nothing.
// Use it when the input is known to be clean (a week of normal traffic)
// and what fired were false positives.
type Suggestion struct {
	Threshold float64 `json:"threshold"`
	Text      string  `json:"text"` // Threshold as a rule file spells it
	Quiet     float64 `json:"quiet"`
	QuietText string  `json:"quiet_text"`
	// Change is "lower", "raise" or "keep", relative to the current
	// threshold.
	Change string `json:"change"`
	Basis  string `json:"basis"` // why, in words
	// Floor is the lowest threshold suggested for the rule (see Floor);
	// Floored says the suggestion was raised to it.
	Floor     float64 `json:"floor"`
	FloorText string  `json:"floor_text"`
	Floored   bool    `json:"floored,omitempty"`
	// TooShort says the input was too short to lower the threshold
	// (Config.MinLowerSpan): the current one is kept, and Basis names
	// what this input alone would have suggested.
	TooShort bool `json:"too_short,omitempty"`
}

// lowerAdvice ends the basis of a suggestion to lower a threshold.
const lowerAdvice = "; lower only on a capture long enough to hold your busiest hours"

// headroom is the margin the suggestion keeps above the background.
const headroom = 1.2

// Report builds the tuning report of everything observed so far.
func (c *Collector) Report(t Totals) *Report {
	rep := &Report{Totals: ReportTotals{Totals: t, SpanSeconds: t.Span().Seconds()}}
	for _, tr := range c.order {
		rep.Rules = append(rep.Rules, c.ruleReport(tr, t.Span()))
	}
	if c.truth != nil {
		rep.Truth = c.truth.Report()
	}
	return rep
}

func (c *Collector) ruleReport(t *track, span time.Duration) RuleReport {
	r := t.r
	u := unitOf(r)
	rr := RuleReport{
		Rule:          r.ID,
		Aggregate:     r.Aggregate.String(),
		Threshold:     r.Threshold,
		ThresholdText: u.format(r.Threshold),
		Unit:          u.label,
		Window:        r.Window.String(),
		Observations:  t.observations,
		Alerts:        t.alerts,
		FiredGroups:   t.firedCount,
		Groups:        len(t.heap),
		GroupsEvicted: t.evicted,
		Fired:         []GroupValue{},
		NearMisses:    []GroupValue{},
	}
	if r.Aggregate == rules.PerFlow {
		rr.ThresholdText, rr.Unit, rr.Window = "", "flows", "0s"
	}
	if r.Aggregate == rules.NewTermsAgg || r.Aggregate == rules.BeaconAgg {
		rr.ThresholdText, rr.Unit = "", ""
	}
	ratio := func(v float64) float64 {
		if r.Threshold <= 0 {
			return 0
		}
		return math.Round(v/r.Threshold*1000) / 1000
	}

	// Fired groups, with their peak over the whole input when tracked.
	weakest := math.Inf(1)
	for h, fg := range t.fired {
		peak := fg.value
		if p, ok := t.peakOf(h); ok && p > peak {
			peak = p
		}
		weakest = min(weakest, peak)
		rr.Fired = append(rr.Fired, GroupValue{Group: fg.group, Peak: round(peak), Ratio: ratio(peak), Alerts: fg.alerts})
	}
	sort.Slice(rr.Fired, func(i, j int) bool {
		a, b := rr.Fired[i], rr.Fired[j]
		if a.Peak != b.Peak {
			return a.Peak > b.Peak
		}
		return groupKey(a.Group) < groupKey(b.Group)
	})
	if len(rr.Fired) > c.cfg.MaxFired {
		rr.Fired = rr.Fired[:c.cfg.MaxFired]
	}

	for _, m := range t.near {
		if len(rr.NearMisses) == c.cfg.NearMisses {
			break
		}
		g := make(map[string]string, len(r.GroupBy))
		start := 0
		for i, fd := range r.GroupBy {
			g[fd.Name] = string(m.text[start:m.ends[i]])
			start = m.ends[i]
		}
		rr.NearMisses = append(rr.NearMisses, GroupValue{Group: g, Peak: round(m.peak), Ratio: ratio(m.peak)})
	}

	if r.Aggregate == rules.PerFlow || len(t.heap) == 0 {
		return rr
	}
	peaks := make([]float64, len(t.heap))
	background, all := 0.0, 0.0
	for i, e := range t.heap {
		peaks[i] = e.peak
		all = max(all, e.peak)
		if _, fired := t.fired[e.hash]; !fired {
			background = max(background, e.peak)
		}
	}
	slices.Sort(peaks)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(peaks)))) - 1
		return round(peaks[max(i, 0)])
	}
	rr.Percentiles = &Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: round(peaks[len(peaks)-1])}
	if math.IsInf(weakest, 1) {
		weakest = 0
	}
	rr.Suggestion = suggest(r, u, background, weakest, t.firedCount > 0, all)
	c.bound(rr.Suggestion, r, u, span)
	return rr
}

// bound keeps a suggestion to lower the threshold at or above the rule's
// floor, and turns it into "keep" when the input is shorter than
// MinLowerSpan.
func (c *Collector) bound(s *Suggestion, r *rules.Rule, u unit, span time.Duration) {
	s.Floor = Floor(r)
	s.FloorText = u.format(s.Floor)
	if s.Change != "lower" {
		return
	}
	s.Basis = strings.TrimSuffix(s.Basis, lowerAdvice)
	if s.Threshold < s.Floor {
		s.Threshold, s.Text, s.Floored = s.Floor, s.FloorText, true
		s.Basis += "; raised to the rule's floor " + s.FloorText + " (the unit's floor or a tenth of the current threshold)"
	}
	switch {
	case s.Threshold >= r.Threshold:
		s.Threshold, s.Text, s.Change = r.Threshold, u.format(r.Threshold), "keep"
	case c.cfg.MinLowerSpan > 0 && span < c.cfg.MinLowerSpan:
		s.Basis = "the input spans " + span.Round(time.Second).String() + ", too short to lower a threshold (at least " +
			c.cfg.MinLowerSpan.String() + "); this input alone suggests " + s.Text + ": " + s.Basis
		s.Threshold, s.Text, s.Change, s.TooShort = r.Threshold, u.format(r.Threshold), "keep", true
	default:
		s.Basis += lowerAdvice
	}
}

// suggest works out a Suggestion (see its documentation for the method).
func suggest(r *rules.Rule, u unit, background, weakest float64, fired bool, all float64) *Suggestion {
	integral := isIntegral(r)
	s := &Suggestion{Quiet: niceAtLeast(all*headroom, integral)}
	switch {
	case !fired:
		s.Threshold = niceAtLeast(background*headroom, integral)
		s.Basis = "nothing fired; background peak " + u.format(background) + " + 20%, rounded up"
	case background == 0:
		s.Threshold = r.Threshold
		s.Basis = "every group fired; no background to set a threshold against"
	case background >= weakest:
		s.Threshold = r.Threshold
		s.Basis = "background peak " + u.format(background) + " reaches the weakest fired group's " +
			u.format(weakest) + ": no threshold separates them (add an exception or a finer group_by)"
	default:
		t := niceAtLeast(background*headroom, integral)
		switch {
		case t <= weakest:
			s.Basis = "background peak " + u.format(background) + " + 20%, rounded up; every fired group still reaches " + u.format(weakest)
		default:
			t = niceAbove(background, integral)
			if t > weakest {
				t = weakest
			}
			s.Basis = "thin margin: background peak " + u.format(background) + " is within 20% of the weakest fired group's " + u.format(weakest)
		}
		s.Threshold = t
	}
	if r.Aggregate == rules.Top {
		s.Basis += "; top's share and rank conditions apply as well"
	}
	s.Text, s.QuietText = u.format(s.Threshold), u.format(s.Quiet)
	switch {
	case s.Threshold < r.Threshold:
		s.Change = "lower"
		s.Basis += lowerAdvice
	case s.Threshold > r.Threshold:
		s.Change = "raise"
	default:
		s.Change = "keep"
	}
	return s
}

// isIntegral reports whether the rule's values are whole numbers, so that
// a threshold between two of them means the next one up.
func isIntegral(r *rules.Rule) bool {
	return !r.Rate && (r.Scale == 0 || r.Scale == 1 || r.Aggregate == rules.Distinct)
}

// steps are the round numbers of a decade.
var steps = [...]float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8}

// niceAtLeast returns the smallest round number at least x (give or take
// the float noise of x).
func niceAtLeast(x float64, integral bool) float64 {
	return niceAbove(x*(1-1e-9), integral)
}

// niceAbove returns the smallest round number greater than x.
func niceAbove(x float64, integral bool) float64 {
	if x <= 0 {
		return 1
	}
	exp := math.Floor(math.Log10(x))
	for {
		p := math.Pow(10, exp)
		for _, s := range steps {
			v := round4(s * p)
			if v > x {
				if integral {
					v = math.Ceil(v)
					if v <= x {
						continue
					}
				}
				return v
			}
		}
		exp++
	}
}

// round4 rounds to four significant digits, removing the noise of
// multiplying by powers of ten.
func round4(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// round keeps reports readable: whole numbers stay, others get three
// decimals.
func round(v float64) float64 {
	if v == math.Trunc(v) || math.Abs(v) >= 1e15 {
		return v
	}
	return math.Round(v*1000) / 1000
}

// unit is how a rule's values are spelled: what they count (the label of
// the report) and their rules.Unit (the suffixes of a rule file).
type unit struct {
	label string
	u     rules.Unit
}

// unitOf tells what a rule's values count.
func unitOf(r *rules.Rule) unit {
	u := r.ValueUnit()
	switch {
	case r.Aggregate == rules.Distinct:
		return unit{r.DistinctField.Name, u}
	case r.Metric == nil && r.Rate:
		return unit{"flows/s", u}
	case r.Metric == nil:
		return unit{"flows", u}
	}
	switch u {
	case rules.UnitBitRate:
		return unit{"bps", u}
	case rules.UnitByteRate:
		return unit{"bytes/s", u}
	case rules.UnitBytes:
		return unit{"bytes", u}
	case rules.UnitPacketRate:
		return unit{"pps", u}
	}
	return unit{r.Metric.Name, u}
}

// format spells v as a rule file would: "20MB", "1.2Gbps", "150".
func (u unit) format(v float64) string { return rules.FormatQuantity(v, u.u) }

func groupKey(g map[string]string) string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, g[k]...)
		b = append(b, ' ')
	}
	return string(b)
}
