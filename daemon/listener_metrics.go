package daemon

// The listeners' metrics: per listener what came in and what the ingest
// budgets refused, per exporter and version what its decoder saw.

var (
	lbl = []string{"listener"}
	exp = []string{"exporter", "version"}

	datagramsDesc   = desc("listener_datagrams_total", "Datagrams received.", lbl...)
	bytesDesc       = desc("listener_bytes_total", "Bytes received.", lbl...)
	flowsDesc       = desc("listener_flows_total", "Flows decoded and queued.", lbl...)
	deniedDesc      = desc("listener_denied_total", "Datagrams from exporters not allowed.", lbl...)
	malformedDesc   = desc("listener_malformed_total", "Datagrams that failed to decode.", lbl...)
	unsupportedDesc = desc("listener_unsupported_total", "Datagrams of no known version.", lbl...)
	kernelDropsDesc = desc("listener_kernel_drops_total", "Datagrams the kernel dropped (receive buffer full).", lbl...)
	readBufferDesc  = desc("listener_read_buffer_bytes", "Socket receive buffer the kernel granted (read_buffer; capped at net.core.rmem_max without CAP_NET_ADMIN).", lbl...)

	exporterFlowsDesc   = desc("exporter_flows_total", "Flows decoded per exporter and version.", exp...)
	exporterPacketsDesc = desc("exporter_packets_total", "Export datagrams per exporter and version.", exp...)
	decodeErrorsDesc    = desc("exporter_decode_errors_total", "Decode errors per exporter and version.", exp...)
	templateMissesDesc  = desc("exporter_template_misses_total", "Data sets whose template was unknown.", exp...)
	sequenceLostDesc    = desc("exporter_sequence_lost_total", "Flows or datagrams lost according to sequence numbers.", exp...)
	sflowSamplesDesc    = desc("sflow_samples_total", "sFlow samples per exporter and kind.", "exporter", "kind")
	clockSkewDesc       = desc("exporter_clock_skew_seconds", "Exporter clock minus collector clock (export header time against receive time, median of recent datagrams).", exp...)
	clockSuppressedDesc = desc("exporter_clock_warnings_suppressed_total", "Exporter clock warnings not logged (over 10 a minute per listener).", lbl...)

	rejectedDatagramsDesc = desc("ingest_rejected_datagrams_total",
		"Datagrams refused: rate (a new exporter over the admission rate), table_full (the exporter table full of established exporters), flows_per_datagram (decoded up to the cap, the rest dropped), malformed.", "listener", "reason")
	rejectedFlowsDesc = desc("ingest_rejected_flows_total",
		"Flow records dropped: flows_per_datagram (beyond ingest.max_flows_per_datagram).", "listener", "reason")
	rejectedTemplatesDesc = desc("ingest_rejected_templates_total",
		"Templates refused: fields, record_length, exporter_bytes, total_bytes, count.", "listener", "reason")
	evictedExportersDesc = desc("ingest_evicted_exporters_total",
		"Exporters on probation (no valid template or record yet) evicted to make room for a new one.", lbl...)
	ingestExportersDesc = desc("ingest_exporters", "Exporters (and sFlow agents) a listener keeps state for.", lbl...)
	templateBytesDesc   = desc("ingest_template_bytes", "Memory of the templates a listener holds.", lbl...)
)

// listenerMetrics reads every listener in service.
func (d *Daemon) listenerMetrics() metricSet {
	return func(m emit) {
		for _, l := range d.listeners.list() {
			s := l.Stats()
			n := l.Name()
			m.counter(datagramsDesc, s.Datagrams, n)
			m.counter(bytesDesc, s.Bytes, n)
			m.counter(flowsDesc, s.Flows, n)
			m.counter(deniedDesc, s.Denied, n)
			m.counter(malformedDesc, s.Malformed, n)
			m.counter(unsupportedDesc, s.Unsupported, n)
			m.counter(kernelDropsDesc, s.KernelDrops, n)
			if granted, _ := l.ReadBuffer(); granted > 0 {
				m.gauge(readBufferDesc, float64(granted), n)
			}
			d.collectExporters(m, l)
			m.counter(clockSuppressedDesc, l.netflow.ClockWarningsSuppressed(), n)
			collectIngest(m, l)
		}
	}
}

// collectExporters reports the decoders' per-exporter counters: known
// and busiest exporters by name, the rest summed under exporter="other"
// (see exporterRows).
func (d *Daemon) collectExporters(m emit, l *listener) {
	for _, r := range exporterRows(l, d.knownExporterSet(), d.cfg.Ingest.MetricsLimit()) {
		addr, v := r.exporter, r.version
		if v != "sflow5" && r.exporter != otherExporters {
			m.gauge(clockSkewDesc, r.clockSkew.Seconds(), addr, v)
		}
		m.counter(exporterPacketsDesc, r.packets, addr, v)
		m.counter(exporterFlowsDesc, r.flows, addr, v)
		m.counter(decodeErrorsDesc, r.errors, addr, v)
		if v != "sflow5" {
			m.counter(templateMissesDesc, r.templateMisses, addr, v)
		}
		m.counter(sequenceLostDesc, r.lost, addr, v)
		if v == "sflow5" {
			m.counter(sflowSamplesDesc, r.flowSamples, addr, "flow")
			m.counter(sflowSamplesDesc, r.counterSamples, addr, "counter")
			m.counter(sflowSamplesDesc, r.otherSamples, addr, "other")
		}
	}
}

// collectIngest reports one listener's rejections.
func collectIngest(m emit, l *listener) {
	n := l.Name()
	sf := l.sflow.Stats()
	r := l.netflow.Rejections()
	m.counter(rejectedDatagramsDesc, r.Rate+sf.RejectedRate, n, "rate")
	m.counter(rejectedDatagramsDesc, r.TableFull+sf.Rejected-sf.RejectedRate, n, "table_full")
	m.counter(rejectedDatagramsDesc, r.DatagramsOverCap, n, "flows_per_datagram")
	m.counter(rejectedDatagramsDesc, l.Stats().Malformed, n, "malformed")
	m.counter(rejectedFlowsDesc, r.FlowsOverCap, n, "flows_per_datagram")
	m.counter(rejectedTemplatesDesc, r.TemplateFields, n, "fields")
	m.counter(rejectedTemplatesDesc, r.TemplateRecordLength, n, "record_length")
	m.counter(rejectedTemplatesDesc, r.TemplateExporterBytes, n, "exporter_bytes")
	m.counter(rejectedTemplatesDesc, r.TemplateTotalBytes, n, "total_bytes")
	m.counter(rejectedTemplatesDesc, r.TemplateCount, n, "count")
	m.counter(evictedExportersDesc, r.Evicted+sf.Evicted, n)
	m.gauge(ingestExportersDesc, float64(l.netflow.ExporterCount()+len(sf.Agents)), n)
	m.gauge(templateBytesDesc, float64(l.netflow.TemplateBytes()), n)
}
