package daemon

import (
	"testing"
)

// The exporters /metrics always names are those the config in service
// names: an exporter added to sampling.exporters by a reload gets a row of
// its own, though busier exporters fill ingest.metrics_exporters.
func TestKnownExportersFollowReload(t *testing.T) {
	const base = "ingest: {metrics_exporters: 1}\nreload: {watch: 50ms}\n"
	d := runDaemon(t, base)
	traffic := func(want float64) {
		d.send(t, "127.0.0.11", toyDatagram(5))
		d.send(t, "127.0.0.12", toyDatagram(1))
		d.waitMetric(t, `flowguard_exporter_flows_total{exporter="127.0.0.11",version="toy1"}`, 5)
		d.waitMetric(t, "flowguard_engine_flows_total", want)
	}
	traffic(6)
	if v := scrapeMetric(t, d.http, `flowguard_exporter_flows_total{exporter="127.0.0.12",version="toy1"}`); v != -1 {
		t.Fatalf("127.0.0.12 named before it is known (%v): the busiest exporter fills the one row", v)
	}
	if v := scrapeMetric(t, d.http, `flowguard_exporter_flows_total{exporter="other",version="toy1"}`); v != 1 {
		t.Fatalf("other: %v flows, want 1", v)
	}

	d.writeConfig(t, base+"sampling: {exporters: {\"127.0.0.12\": 1}}\n")
	d.waitMetric(t, "flowguard_reloads_total", 1)
	if v := scrapeMetric(t, d.http, "flowguard_reload_ok"); v != 1 {
		t.Fatalf("flowguard_reload_ok %v", v)
	}
	traffic(12) // the listener was rebound with fresh decoders (sampling changed)
	if v := scrapeMetric(t, d.http, `flowguard_exporter_flows_total{exporter="127.0.0.12",version="toy1"}`); v != 1 {
		t.Errorf("127.0.0.12 after the reload: %v flows, want its own row of 1", v)
	}
	var rows []map[string]any
	getJSON(t, "http://"+d.http+"/api/exporters", &rows)
	named := map[string]bool{}
	for _, r := range rows {
		named[r["exporter"].(string)] = true
	}
	if !named["127.0.0.11"] || !named["127.0.0.12"] || named["other"] {
		t.Errorf("/api/exporters after the reload: %v", rows)
	}
}
