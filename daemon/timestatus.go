package daemon

import (
	"cmp"
	"slices"
	"time"

	"github.com/flowguard/flowguard/engine"
)

// Event time as the daemon shows it: the "time" object of /api/status and
// the flowguard_flows_late_total / flowguard_flows_future_total metrics
// (README "Time"). Sources are bounded by the engine (engine.MaxSources,
// the rest under "other"), and so are these labels.

// SourceStatus is one source in /api/status.
type SourceStatus struct {
	Source string `json:"source"` // "NETFLOW_V9 192.0.2.1", "file", "other"
	Flows  uint64 `json:"flows"`
	Late   uint64 `json:"late"`
	Future uint64 `json:"future"`
	Clock  string `json:"clock"`            // the source's clock, RFC 3339 ("-" until known)
	Shift  string `json:"shift"`            // added to its flow times to place them on the receive clock
	Behind string `json:"behind_watermark"` // how far its clock is behind the watermark
}

// TimeObject is /api/status's "time".
type TimeObject struct {
	Watermark       string         `json:"watermark"`
	AllowedLateness string         `json:"allowed_lateness"`
	FutureTolerance string         `json:"future_tolerance"`
	Late            uint64         `json:"late"`
	Future          uint64         `json:"future"`
	Sources         []SourceStatus `json:"sources"`
}

// namedSources bounds the sources /metrics and /api/status name to n:
// up to n/2 with the most to report (late and future flows, a shift),
// then the busiest by flows; the rest, and the engine's own overflow
// entry, are summed as "other". The engine keeps a clock for up to 1024
// sources, and spoofed export can fill them: without this bound each
// scrape would carry thousands of series.
func namedSources(all []engine.SourceStats, n int) []engine.SourceStats {
	interest := func(s engine.SourceStats) uint64 {
		v := s.Late + s.Future
		if s.Shift != 0 {
			v++
		}
		return v
	}
	byInterest := slices.Clone(all)
	slices.SortStableFunc(byInterest, func(a, b engine.SourceStats) int {
		if c := cmp.Compare(interest(b), interest(a)); c != 0 {
			return c
		}
		return cmp.Compare(b.Flows, a.Flows)
	})
	taken := make(map[int]bool, n)
	out := make([]engine.SourceStats, 0, n+1)
	for i, s := range byInterest {
		if len(out) >= n/2 || interest(s) == 0 {
			break
		}
		if s.Type != "other" {
			out = append(out, s)
			taken[i] = true
		}
	}
	rest := make([]int, 0, len(byInterest))
	for i := range byInterest {
		if !taken[i] {
			rest = append(rest, i)
		}
	}
	slices.SortStableFunc(rest, func(a, b int) int { return cmp.Compare(byInterest[b].Flows, byInterest[a].Flows) })
	other := engine.SourceStats{Type: "other"}
	summed := false
	for _, i := range rest {
		s := byInterest[i]
		if len(out) < n && s.Type != "other" {
			out = append(out, s)
			continue
		}
		other.Flows += s.Flows
		other.Late += s.Late
		other.Future += s.Future
		summed = true
	}
	if summed {
		out = append(out, other)
	}
	return out
}

func timeStatus(ts engine.TimeStats, n int) TimeObject {
	out := TimeObject{
		Watermark:       TimeText(ts.Watermark),
		AllowedLateness: ts.AllowedLateness.String(),
		FutureTolerance: ts.FutureTolerance.String(),
		Late:            ts.Late,
		Future:          ts.Future,
		Sources:         []SourceStatus{},
	}
	for _, s := range namedSources(ts.Sources, n) {
		behind := "-"
		if s.Clock != 0 && ts.Watermark != 0 {
			behind = time.Duration(ts.Watermark - s.Clock).String()
		}
		out.Sources = append(out.Sources, SourceStatus{
			Source: SourceName(s), Flows: s.Flows, Late: s.Late, Future: s.Future,
			Clock: TimeText(s.Clock), Shift: time.Duration(s.Shift).String(), Behind: behind,
		})
	}
	return out
}

var (
	flowsLateDesc = desc("flows_late_total",
		"Flows beyond a rule window's allowed lateness behind the watermark, by source.", "source")
	flowsFutureDesc = desc("flows_future_total",
		"Flows stamped past the watermark plus the future tolerance, evaluated at the watermark, by source.", "source")
	watermarkDesc = desc("watermark_seconds",
		"The engine's watermark: the event time windows advance on, Unix seconds.")
	sourceShiftDesc = desc("source_shift_seconds",
		"Seconds added to a source's flow times to place them on the receive clock (0: its clock is within bounds).", "source")
)

// timeMetrics exports the engine's time stats on each scrape.
func (d *Daemon) timeMetrics() metricSet {
	return func(m emit) {
		ts := d.engine.Stats().Time
		m.gauge(watermarkDesc, float64(ts.Watermark)/1e9)
		for _, s := range namedSources(ts.Sources, d.cfg.Ingest.MetricsLimit()) {
			n := SourceName(s)
			m.counter(flowsLateDesc, s.Late, n)
			m.counter(flowsFutureDesc, s.Future, n)
			m.gauge(sourceShiftDesc, time.Duration(s.Shift).Seconds(), n)
		}
	}
}

// SourceName names a source as /api/status, /metrics and replay's
// summary do.
func SourceName(s engine.SourceStats) string {
	if s.Address.IsValid() {
		return s.Type + " " + s.Address.String()
	}
	if s.Type == "" {
		return "file"
	}
	return s.Type
}

// TimeText writes Unix nanoseconds as RFC 3339 ("-" for 0).
func TimeText(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
