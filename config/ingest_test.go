package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/ingest/netflow"
)

// The ingest section reaches the decoders' configuration; a negative
// budget names its key; known exporters come from every section naming
// one.
func TestIngestSection(t *testing.T) {
	c, err := Load(write(t, `ingest:
  max_flows_per_datagram: 100
  max_template_fields: 64
  template_bytes_per_exporter: 65536
  template_bytes_total: 1048576
  new_exporters_per_second: 50
  new_exporters_burst: 10
  probation_idle: 30s
  metrics_exporters: 8
engine: {queue_flows: 4096}
sampling: {exporters: {192.0.2.1: 10}}
listen:
  - {name: a, address: ":2055", allow: [192.0.2.0/24, 198.51.100.7, 2001:db8::1/128]}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := netflow.NewTemplateBudget(c.Ingest.TemplateBytesTotal)
	nf := c.Ingest.NetFlowConfig(b)
	if nf.MaxFlowsPerDatagram != 100 || nf.MaxTemplateFields != 64 || nf.TemplateBytesPerExporter != 65536 ||
		nf.TemplateBudget != b || nf.Admission.Rate != 50 || nf.Admission.Burst != 10 || nf.ProbationIdle != 30*time.Second {
		t.Errorf("netflow config %+v", nf)
	}
	if c.Ingest.MetricsLimit() != 8 || c.Engine.QueueLimit() != 4096 {
		t.Errorf("metrics limit %d, queue %d", c.Ingest.MetricsLimit(), c.Engine.QueueLimit())
	}
	known := c.KnownExporters()
	for _, a := range []string{"192.0.2.1", "198.51.100.7", "2001:db8::1"} {
		if !known[netip.MustParseAddr(a)] {
			t.Errorf("%s not known (%v)", a, known)
		}
	}
	if len(known) != 3 {
		t.Errorf("known exporters %v: a CIDR is not an exporter", known)
	}
	_, err = Load(write(t, "ingest: {max_template_fields: -1, template_bytes_total: -5}\nengine: {queue_flows: -1}\n"))
	for _, want := range []string{"ingest.max_template_fields: must be >= 0", "ingest.template_bytes_total", "engine.queue_flows"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	d, _ := Load("")
	if d.Ingest.MetricsLimit() != DefaultMetricsExporters || d.Engine.QueueLimit() != DefaultQueueFlows {
		t.Error("ingest defaults")
	}
}
