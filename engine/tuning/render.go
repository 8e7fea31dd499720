package tuning

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/flowguard/flowguard/rules"
)

// WriteJSON writes the report as one indented JSON object (--stats json).
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes the report for people: the totals, then one block per
// rule that saw anything, rules that fired first.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	t := rep.Totals
	fmt.Fprintf(&b, "input: %d flows, %d packets, %s", t.Flows, t.Packets, byteUnit.format(float64(t.Bytes)))
	if !t.First.IsZero() {
		fmt.Fprintf(&b, ", %s .. %s (%s)", t.First.UTC().Format(time.RFC3339), t.Last.UTC().Format(time.RFC3339),
			t.Span().Round(time.Millisecond))
	}
	fmt.Fprintf(&b, ", %d decode errors\n", t.DecodeErrors)
	fmt.Fprintf(&b, "event time: %d late (beyond a window's allowed lateness), %d future (clamped to the watermark)\n", t.Late, t.Future)

	rs := append([]RuleReport(nil), rep.Rules...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Alerts > 0 && rs[j].Alerts == 0 })
	var idle []string
	for _, r := range rs {
		if r.Observations == 0 && r.Alerts == 0 && (r.Learned == nil || r.Learned.Groups == 0) {
			idle = append(idle, r.Rule)
			continue
		}
		b.WriteByte('\n')
		writeRule(&b, &r)
	}
	if len(idle) > 0 {
		fmt.Fprintf(&b, "\nno matching flows: %s\n", strings.Join(idle, ", "))
	}
	if rep.Truth != nil {
		b.WriteByte('\n')
		rep.Truth.WriteText(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var byteUnit = unit{"bytes", rules.UnitBytes}

func writeRule(b *strings.Builder, r *RuleReport) {
	u := unit{r.Unit, rules.UnitNone}
	switch r.Unit {
	case "bytes":
		u.u = rules.UnitBytes
	case "bps":
		u.u = rules.UnitBitRate
	case "pps":
		u.u = rules.UnitPacketRate
	case "bytes/s":
		u.u = rules.UnitByteRate
	}
	if r.Aggregate == "match" {
		fmt.Fprintf(b, "%s (per flow): %s from %s\n", r.Rule, count(r.Alerts, "alert"), count(r.FiredGroups, "group"))
		for _, g := range r.Fired {
			fmt.Fprintf(b, "  fired       %-44s %s\n", groupText(g.Group), count(g.Alerts, "alert"))
		}
		return
	}
	if r.Aggregate == rules.NewTermsAgg.String() || r.Aggregate == rules.BeaconAgg.String() {
		fmt.Fprintf(b, "%s (%s): %s from %s\n", r.Rule, r.Aggregate, count(r.Alerts, "alert"), count(r.FiredGroups, "group"))
		if r.Learned != nil {
			writeLearned(b, r.Learned)
		}
		return
	}
	what := r.Aggregate + " " + r.Unit // sum bytes, top bytes, distinct dst_port
	if strings.HasPrefix(r.Unit, "flows") {
		what = "count " + r.Unit
	}
	fmt.Fprintf(b, "%s (%s over %s, threshold %s): %s from %s, %s\n",
		r.Rule, what, r.Window, r.ThresholdText, count(r.Alerts, "alert"), count(r.FiredGroups, "group"), count(r.Observations, "value"))
	if p := r.Percentiles; p != nil {
		more := ""
		if r.GroupsEvicted > 0 {
			more = fmt.Sprintf(" (the highest kept; %d evicted)", r.GroupsEvicted)
		}
		fmt.Fprintf(b, "  group peaks %s%s: p50 %s  p90 %s  p99 %s  max %s\n", count(r.Groups, "group"), more,
			u.format(p.P50), u.format(p.P90), u.format(p.P99), u.format(p.Max))
	}
	for _, g := range r.Fired {
		fmt.Fprintf(b, "  fired       %-44s peak %-10s %6.2f× threshold, %s\n", groupText(g.Group), u.format(g.Peak), g.Ratio, count(g.Alerts, "alert"))
	}
	if n := r.FiredGroups - len(r.Fired); n > 0 {
		fmt.Fprintf(b, "  fired       ... and %d more groups\n", n)
	}
	for _, g := range r.NearMisses {
		fmt.Fprintf(b, "  near miss   %-44s peak %-10s %6.2f× threshold\n", groupText(g.Group), u.format(g.Peak), g.Ratio)
	}
	if s := r.Suggestion; s != nil {
		fmt.Fprintf(b, "  suggestion  threshold: %s (%s; now %s): %s\n", s.Text, s.Change, r.ThresholdText, s.Basis)
		fmt.Fprintf(b, "              quiet on this input at %s\n", s.QuietText)
	}
	if r.Learned != nil {
		writeLearned(b, r.Learned)
	}
}

// groupText renders a group as "k=v k=v" in key order.
func groupText(g map[string]string) string {
	s := groupKey(g)
	return strings.TrimSuffix(s, " ")
}

// count writes n and the noun, plural unless n is 1: "1 alert", "2 alerts".
func count[N int | uint64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
