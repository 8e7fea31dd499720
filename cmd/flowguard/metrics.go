package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
)

// metrics exports the daemon's counters on each scrape, reading the
// components' own Stats: nothing on the flow path touches Prometheus.
type metrics struct {
	d *daemon

	datagrams, bytes, flows, denied, malformed, unsupported, kernelDrops *prometheus.Desc
	exporterFlows, exporterPackets, decodeErrors, templateMisses, lost   *prometheus.Desc
	ruleEvaluated, ruleMatched, ruleAlerts, ruleSuppressed               *prometheus.Desc
	windowKeys, windowEvicted, windowLate                                *prometheus.Desc
	engineFlows, alerts, queueDepth, uptime                              *prometheus.Desc
	sflowSamples, notifySent, notifyRetried, notifyDropped, notifyFailed *prometheus.Desc
	notifyQueued, notifySpooled, geoipHits, geoipMisses, reloads         *prometheus.Desc
	reloadErrors, reloadOK, rulesLoaded                                  *prometheus.Desc
	ruleErrors                                                           *prometheus.Desc
	ingest                                                               ingestMetrics
	clockSkew, clockSuppressed                                           *prometheus.Desc

	exchangeDropped *prometheus.Desc
}

func newMetrics(d *daemon) *metrics {
	l := []string{"listener"}
	e := []string{"exporter", "version"}
	r := []string{"rule"}
	desc := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("flowguard_"+name, help, labels, nil)
	}
	return &metrics{
		d:               d,
		datagrams:       desc("listener_datagrams_total", "Datagrams received.", l),
		bytes:           desc("listener_bytes_total", "Bytes received.", l),
		flows:           desc("listener_flows_total", "Flows decoded and queued.", l),
		denied:          desc("listener_denied_total", "Datagrams from exporters not allowed.", l),
		malformed:       desc("listener_malformed_total", "Datagrams that failed to decode.", l),
		unsupported:     desc("listener_unsupported_total", "Datagrams of no known version.", l),
		kernelDrops:     desc("listener_kernel_drops_total", "Datagrams the kernel dropped (receive buffer full).", l),
		exporterFlows:   desc("exporter_flows_total", "Flows decoded per exporter and version.", e),
		exporterPackets: desc("exporter_packets_total", "Export datagrams per exporter and version.", e),
		decodeErrors:    desc("exporter_decode_errors_total", "Decode errors per exporter and version.", e),
		templateMisses:  desc("exporter_template_misses_total", "Data sets whose template was unknown.", e),
		lost:            desc("exporter_sequence_lost_total", "Flows or datagrams lost according to sequence numbers.", e),
		ruleEvaluated:   desc("rule_evaluations_total", "Flows a rule's condition ran on.", r),
		ruleMatched:     desc("rule_matches_total", "Flows that matched a rule.", r),
		ruleAlerts:      desc("rule_alerts_total", "Alerts a rule raised.", r),
		ruleSuppressed:  desc("rule_suppressed_total", "Alerts held back by suppression.", r),
		ruleErrors:      desc("rule_errors_total", "Run-time errors of a rule's conditions (each counted as false).", r),
		windowKeys:      desc("rule_window_keys", "Groups a rule's window holds.", r),
		windowEvicted:   desc("rule_window_evicted_total", "Groups evicted from a full window.", r),
		windowLate:      desc("rule_window_late_total", "Updates beyond the window and its allowed lateness (README \"Time\"), ignored.", r),
		engineFlows:     desc("engine_flows_total", "Flows evaluated.", nil),
		alerts:          desc("alerts_total", "Alerts emitted.", nil),
		queueDepth:      desc("engine_queue_batches", "Batches waiting for the engine.", nil),
		uptime:          desc("uptime_seconds", "Seconds since start.", nil),
		sflowSamples:    desc("sflow_samples_total", "sFlow samples per exporter and kind.", []string{"exporter", "kind"}),
		notifySent:      desc("notifier_sent_total", "Alerts delivered.", []string{"notifier"}),
		notifyRetried:   desc("notifier_retried_total", "Delivery attempts retried.", []string{"notifier"}),
		notifyDropped:   desc("notifier_dropped_total", "Alerts dropped, by reason: queue_full, spool_full, spool_error, shutdown.", []string{"notifier", "reason"}),
		notifyFailed:    desc("notifier_failed_total", "Alerts given up on.", []string{"notifier"}),
		notifyQueued:    desc("notifier_queued", "Alerts waiting in memory.", []string{"notifier"}),
		notifySpooled:   desc("notifier_spooled", "Alerts waiting on disk.", []string{"notifier"}),
		geoipHits:       desc("geoip_cache_hits_total", "GeoIP cache hits.", nil),
		geoipMisses:     desc("geoip_cache_misses_total", "GeoIP cache misses.", nil),
		reloads:         desc("reloads_total", "Reloads asked for (SIGHUP).", nil),
		reloadErrors:    desc("reload_errors_total", "Reloads refused for errors.", nil),
		reloadOK:        desc("reload_ok", "1 if the last reload succeeded.", nil),
		rulesLoaded:     desc("rules_loaded", "Rules running.", nil),
		ingest:          newIngestMetrics(),
		clockSkew:       desc("exporter_clock_skew_seconds", "Exporter clock minus collector clock (export header time against receive time, median of recent datagrams).", e),
		clockSuppressed: desc("exporter_clock_warnings_suppressed_total", "Exporter clock warnings not logged (over 10 a minute per listener).", l),
		exchangeDropped: desc("redis_exchange_dropped_total",
			"Groups whose other instances' totals rose past exchange_max_keys, compared at their next local flow only.", nil),
	}
}

// Describe sends every descriptor.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

// Collect reads the components' counters.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	c := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, l := range m.d.listenerList() {
		s := l.Stats()
		n := l.Name()
		c(m.datagrams, s.Datagrams, n)
		c(m.bytes, s.Bytes, n)
		c(m.flows, s.Flows, n)
		c(m.denied, s.Denied, n)
		c(m.malformed, s.Malformed, n)
		c(m.unsupported, s.Unsupported, n)
		c(m.kernelDrops, s.KernelDrops, n)
		m.collectExporters(l, c, g)
		c(m.clockSuppressed, l.netflow.ClockWarningsSuppressed(), n)
		m.ingest.collect(l, ch)
	}
	st := m.d.engine.Stats()
	c(m.engineFlows, st.Flows)
	c(m.alerts, m.d.alerts.Load())
	for _, r := range st.Rules {
		c(m.ruleEvaluated, r.Evaluated, r.ID)
		c(m.ruleMatched, r.Matched, r.ID)
		c(m.ruleAlerts, r.Alerts, r.ID)
		c(m.ruleSuppressed, r.Suppressed, r.ID)
		c(m.ruleErrors, r.Errors, r.ID)
		g(m.windowKeys, float64(r.Window.Keys), r.ID)
		c(m.windowEvicted, r.Window.Evicted, r.ID)
		c(m.windowLate, r.Window.Late, r.ID)
	}
	for _, n := range m.d.notify().Stats() {
		c(m.notifySent, n.Sent, n.Name)
		c(m.notifyRetried, n.Retried, n.Name)
		c(m.notifyDropped, n.DroppedQueueFull, n.Name, "queue_full")
		c(m.notifyDropped, n.DroppedSpoolFull, n.Name, "spool_full")
		c(m.notifyDropped, n.DroppedSpoolError, n.Name, "spool_error")
		c(m.notifyDropped, n.DroppedShutdown, n.Name, "shutdown")
		c(notifySpoolErrors, n.SpoolErrors, n.Name)
		g(notifySpoolBytes, float64(n.SpoolBytes), n.Name)
		c(m.notifyFailed, n.Failed, n.Name)
		g(m.notifyQueued, float64(n.Queued), n.Name)
		g(m.notifySpooled, float64(n.Spooled), n.Name)
	}
	collectAlertmanagers(m.d.notify(), ch)
	es := m.d.enrich.Stats()
	c(m.geoipHits, es.GeoIP.CacheHits)
	c(m.geoipMisses, es.GeoIP.CacheMisses)
	c(m.reloads, m.d.reloads.Load())
	c(m.reloadErrors, m.d.reloadErrs.Load())
	ok := 0.0
	if m.d.reloadOK.Load() {
		ok = 1
	}
	g(m.reloadOK, ok)
	g(m.rulesLoaded, float64(m.d.ruleCount.Load()))
	m.d.collectRestartNeeded(ch)
	m.d.collectLosses(ch)
	m.ingest.collectQueue(m.d.pipe, ch)
	if rs, ok := m.d.store.(*rediswindow.Store); ok {
		c(m.exchangeDropped, rs.Stats().ExchangeDropped)
	}
	depth, _ := m.d.pipe.Depth()
	g(m.queueDepth, float64(depth))
	g(m.uptime, timeSince(m.d.started))
}

// collectExporters reports the decoders' per-exporter counters: known
// and busiest exporters by name, the rest summed under exporter="other"
// (see exporterRows).
func (m *metrics) collectExporters(l *listener, c func(*prometheus.Desc, uint64, ...string), g func(*prometheus.Desc, float64, ...string)) {
	for _, r := range exporterRows(l, m.d.knownExporters, m.d.cfg.Ingest.MetricsLimit()) {
		addr, v := r.exporter, r.version
		if v != "sflow5" && r.exporter != otherExporters {
			g(m.clockSkew, r.clockSkew.Seconds(), addr, v)
		}
		c(m.exporterPackets, r.packets, addr, v)
		c(m.exporterFlows, r.flows, addr, v)
		c(m.decodeErrors, r.errors, addr, v)
		if v != "sflow5" {
			c(m.templateMisses, r.templateMisses, addr, v)
		}
		c(m.lost, r.lost, addr, v)
		if v == "sflow5" {
			c(m.sflowSamples, r.flowSamples, addr, "flow")
			c(m.sflowSamples, r.counterSamples, addr, "counter")
			c(m.sflowSamples, r.otherSamples, addr, "other")
		}
	}
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
