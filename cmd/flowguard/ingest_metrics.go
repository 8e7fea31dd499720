package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/engine"
)

// ingestMetrics export what the ingest budgets refused, per listener.
type ingestMetrics struct {
	rejectedDatagrams, rejectedFlows, rejectedTemplates *prometheus.Desc
	evicted, exporters, templateBytes                   *prometheus.Desc
	queueWaits                                          *prometheus.Desc
}

func newIngestMetrics() ingestMetrics {
	l := []string{"listener"}
	lr := []string{"listener", "reason"}
	return ingestMetrics{
		rejectedDatagrams: prometheus.NewDesc("flowguard_ingest_rejected_datagrams_total",
			"Datagrams refused: rate (a new exporter over the admission rate), table_full (the exporter table full of established exporters), flows_per_datagram (decoded up to the cap, the rest dropped), malformed.", lr, nil),
		rejectedFlows: prometheus.NewDesc("flowguard_ingest_rejected_flows_total",
			"Flow records dropped: flows_per_datagram (beyond ingest.max_flows_per_datagram).", lr, nil),
		rejectedTemplates: prometheus.NewDesc("flowguard_ingest_rejected_templates_total",
			"Templates refused: fields, record_length, exporter_bytes, total_bytes, count.", lr, nil),
		evicted: prometheus.NewDesc("flowguard_ingest_evicted_exporters_total",
			"Exporters on probation (no valid template or record yet) evicted to make room for a new one.", l, nil),
		exporters: prometheus.NewDesc("flowguard_ingest_exporters",
			"Exporters (and sFlow agents) a listener keeps state for.", l, nil),
		templateBytes: prometheus.NewDesc("flowguard_ingest_template_bytes",
			"Memory of the templates a listener holds.", l, nil),
		queueWaits: prometheus.NewDesc("flowguard_engine_queue_full_total",
			"Chunks of up to 256 flows that found the engine queue (engine.queue_flows) full: the listener waited.", nil, nil),
	}
}

// collectQueue reports the waits for a full engine queue.
func (m *ingestMetrics) collectQueue(p *engine.Pipeline, ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(m.queueWaits, prometheus.CounterValue, float64(p.Waits()))
}

// collect reports one listener's rejections.
func (m *ingestMetrics) collect(l *listener, ch chan<- prometheus.Metric) {
	c := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	n := l.Name()
	sf := l.sflow.Stats()
	r := l.netflow.Rejections()
	c(m.rejectedDatagrams, r.Rate+sf.RejectedRate, n, "rate")
	c(m.rejectedDatagrams, r.TableFull+sf.Rejected-sf.RejectedRate, n, "table_full")
	c(m.rejectedDatagrams, r.DatagramsOverCap, n, "flows_per_datagram")
	c(m.rejectedDatagrams, l.Stats().Malformed, n, "malformed")
	c(m.rejectedFlows, r.FlowsOverCap, n, "flows_per_datagram")
	c(m.rejectedTemplates, r.TemplateFields, n, "fields")
	c(m.rejectedTemplates, r.TemplateRecordLength, n, "record_length")
	c(m.rejectedTemplates, r.TemplateExporterBytes, n, "exporter_bytes")
	c(m.rejectedTemplates, r.TemplateTotalBytes, n, "total_bytes")
	c(m.rejectedTemplates, r.TemplateCount, n, "count")
	c(m.evicted, r.Evicted+sf.Evicted, n)
	ch <- prometheus.MustNewConstMetric(m.exporters, prometheus.GaugeValue, float64(l.netflow.ExporterCount()+len(sf.Agents)), n)
	ch <- prometheus.MustNewConstMetric(m.templateBytes, prometheus.GaugeValue, float64(l.netflow.TemplateBytes()), n)
}
