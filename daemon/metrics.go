package daemon

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Each component exports its own metrics as a prometheus.Collector that
// reads the component's Stats on each scrape: nothing on the flow path
// touches Prometheus. registry gathers them, with the HTTP server's and
// Go's, into the one registry /metrics serves.

// metricSet is one component's metrics: the function sends them.
type metricSet func(m emit)

// Describe sends nothing: the set is unchecked, its series vary with
// listeners, rules and notifiers.
func (metricSet) Describe(chan<- *prometheus.Desc) {}

// Collect reads the component's counters.
func (s metricSet) Collect(ch chan<- prometheus.Metric) { s(emit{ch}) }

// emit sends samples to a scrape.
type emit struct{ ch chan<- prometheus.Metric }

func (e emit) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emit) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// flag sends 1 for on, else 0.
func (e emit) flag(d *prometheus.Desc, on bool, labels ...string) {
	v := 0.0
	if on {
		v = 1
	}
	e.gauge(d, v, labels...)
}

// desc names a flowguard metric.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("flowguard_"+name, help, labels, nil)
}

var uptimeDesc = desc("uptime_seconds", "Seconds since start.")

// registry gathers every component's metrics.
func (d *Daemon) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.listenerMetrics(), d.engineMetrics(), d.learnedMetrics(), d.timeMetrics(), d.notifierMetrics(), d.storeMetrics(),
		d.enrichMetrics(), d.reloadMetrics(), d.kafkaMetrics(),
		metricSet(func(m emit) { m.gauge(uptimeDesc, timeSince(d.started)) }),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if d.api != nil {
		reg.MustRegister(d.api.web)
	}
	reg.MustRegister(d.collectors...)
	return reg
}

func netflowVersion(v uint16) string {
	switch v {
	case 10:
		return "ipfix"
	case 0:
		return "unknown"
	}
	return "netflow" + strconv.Itoa(int(v))
}
