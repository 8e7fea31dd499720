package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/engine"
)

// Event time as the daemon shows it: the "time" object of /api/status and
// the flowguard_flows_late_total / flowguard_flows_future_total metrics
// (README "Time"). Sources are bounded by the engine (engine.MaxSources,
// the rest under "other"), and so are these labels.

// sourceStatus is one source in /api/status.
type sourceStatus struct {
	Source string `json:"source"` // "NETFLOW_V9 192.0.2.1", "file", "other"
	Flows  uint64 `json:"flows"`
	Late   uint64 `json:"late"`
	Future uint64 `json:"future"`
	Clock  string `json:"clock"`            // the source's clock, RFC 3339 ("-" until known)
	Shift  string `json:"shift"`            // added to its flow times to place them on the receive clock
	Behind string `json:"behind_watermark"` // how far its clock is behind the watermark
}

// timeObject is /api/status's "time".
type timeObject struct {
	Watermark       string         `json:"watermark"`
	AllowedLateness string         `json:"allowed_lateness"`
	FutureTolerance string         `json:"future_tolerance"`
	Late            uint64         `json:"late"`
	Future          uint64         `json:"future"`
	Sources         []sourceStatus `json:"sources"`
}

func timeStatus(ts engine.TimeStats) timeObject {
	out := timeObject{
		Watermark:       unixText(ts.Watermark),
		AllowedLateness: ts.AllowedLateness.String(),
		FutureTolerance: ts.FutureTolerance.String(),
		Late:            ts.Late,
		Future:          ts.Future,
		Sources:         []sourceStatus{},
	}
	for _, s := range ts.Sources {
		behind := "-"
		if s.Clock != 0 && ts.Watermark != 0 {
			behind = time.Duration(ts.Watermark - s.Clock).String()
		}
		out.Sources = append(out.Sources, sourceStatus{
			Source: sourceName(s), Flows: s.Flows, Late: s.Late, Future: s.Future,
			Clock: unixText(s.Clock), Shift: time.Duration(s.Shift).String(), Behind: behind,
		})
	}
	return out
}

// timeMetrics exports the engine's time stats on each scrape.
type timeMetrics struct{ d *daemon }

var (
	flowsLateDesc = prometheus.NewDesc("flowguard_flows_late_total",
		"Flows beyond a rule window's allowed lateness behind the watermark, by source.", []string{"source"}, nil)
	flowsFutureDesc = prometheus.NewDesc("flowguard_flows_future_total",
		"Flows stamped past the watermark plus the future tolerance, evaluated at the watermark, by source.", []string{"source"}, nil)
	watermarkDesc = prometheus.NewDesc("flowguard_watermark_seconds",
		"The engine's watermark: the event time windows advance on, Unix seconds.", nil, nil)
	sourceShiftDesc = prometheus.NewDesc("flowguard_source_shift_seconds",
		"Seconds added to a source's flow times to place them on the receive clock (0: its clock is within bounds).", []string{"source"}, nil)
)

// Describe sends the descriptors.
func (m timeMetrics) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

// Collect reads the engine's time stats.
func (m timeMetrics) Collect(ch chan<- prometheus.Metric) {
	ts := m.d.engine.Stats().Time
	ch <- prometheus.MustNewConstMetric(watermarkDesc, prometheus.GaugeValue, float64(ts.Watermark)/1e9)
	for _, s := range ts.Sources {
		n := sourceName(s)
		ch <- prometheus.MustNewConstMetric(flowsLateDesc, prometheus.CounterValue, float64(s.Late), n)
		ch <- prometheus.MustNewConstMetric(flowsFutureDesc, prometheus.CounterValue, float64(s.Future), n)
		ch <- prometheus.MustNewConstMetric(sourceShiftDesc, prometheus.GaugeValue, time.Duration(s.Shift).Seconds(), n)
	}
}
