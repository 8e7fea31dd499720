package console

import "github.com/prometheus/client_golang/prometheus"

var (
	descStreams = prometheus.NewDesc("flowguard_web_event_streams", "Alert event streams (GET /api/events) open.", nil, nil)
	descMax     = prometheus.NewDesc("flowguard_web_event_streams_max", "Alert event streams allowed at once.", nil, nil)
	descSent    = prometheus.NewDesc("flowguard_web_events_sent_total", "Alert events written to event streams.", nil, nil)
	descDropped = prometheus.NewDesc("flowguard_web_event_streams_dropped_total", "Event streams closed because the client fell behind or a write failed.", nil, nil)
	descRefused = prometheus.NewDesc("flowguard_web_event_streams_refused_total", "Event streams refused because the most allowed were open.", nil, nil)
	descFlows   = prometheus.NewDesc("flowguard_talkers_flows_total", "Flows counted into the top talkers.", nil, nil)
	descKeys    = prometheus.NewDesc("flowguard_talkers_keys", "Keys the top talkers hold now, in every bucket (a fixed room, allocated at start).", nil, nil)
	descPruned  = prometheus.NewDesc("flowguard_talkers_pruned_total", "Keys the top talkers forgot, the lightest: by a full table of the current bucket, or left out when a bucket closed.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Console) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descMax, descSent, descDropped, descRefused, descFlows, descKeys, descPruned} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the hub's and the talkers'
// counters, read at each scrape.
func (c *Console) Collect(ch chan<- prometheus.Metric) {
	h := c.Hub.Stats()
	t := c.Talkers.Stats()
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(h.Streams))
	ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(c.Hub.max))
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(h.Sent))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(h.Dropped))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(h.Refused))
	ch <- prometheus.MustNewConstMetric(descFlows, prometheus.CounterValue, float64(t.Flows))
	ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(t.Keys))
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(t.Pruned))
}
