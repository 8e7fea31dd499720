package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/notifiers/alertmanager"
)

// The alertmanager notifiers' own counters (notifiers/README.md,
// "alertmanager"), beside the dispatcher's notifier_* metrics.
var (
	amLabels = []string{"notifier"}

	amActive = prometheus.NewDesc("flowguard_alertmanager_active",
		"Alerts kept active in Alertmanager: re-sent every resend_interval, resolved at their end.", amLabels, nil)
	amResent = prometheus.NewDesc("flowguard_alertmanager_resent_total",
		"Active alerts sent again.", amLabels, nil)
	amResolved = prometheus.NewDesc("flowguard_alertmanager_resolved_total",
		"Alerts sent with their endsAt passed and accepted.", amLabels, nil)
	amGivenUp = prometheus.NewDesc("flowguard_alertmanager_resolve_given_up_total",
		"Resolves no Alertmanager accepted within resend_interval after their end.", amLabels, nil)
	amEvicted = prometheus.NewDesc("flowguard_alertmanager_evicted_total",
		"Active alerts forgotten because max_active was reached.", amLabels, nil)
	amTruncated = prometheus.NewDesc("flowguard_alertmanager_truncated_values_total",
		"Label and annotation values cut to max_value_bytes.", amLabels, nil)
	amRequests = prometheus.NewDesc("flowguard_alertmanager_requests_total",
		"POSTs to single Alertmanagers.", amLabels, nil)
	amRequestErrors = prometheus.NewDesc("flowguard_alertmanager_request_errors_total",
		"POSTs to single Alertmanagers that failed.", amLabels, nil)
)

// collectAlertmanagers reports the counters of every alertmanager notifier.
func collectAlertmanagers(d *notifiers.Dispatcher, ch chan<- prometheus.Metric) {
	for _, n := range d.Notifiers() {
		am, ok := n.(*alertmanager.Notifier)
		if !ok {
			continue
		}
		s, name := am.Stats(), am.Name()
		ch <- prometheus.MustNewConstMetric(amActive, prometheus.GaugeValue, float64(s.Active), name)
		for d, v := range map[*prometheus.Desc]uint64{amResent: s.Resent, amResolved: s.Resolved, amGivenUp: s.GivenUp,
			amEvicted: s.Evicted, amTruncated: s.Truncated, amRequests: s.Requests, amRequestErrors: s.RequestErrors} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
	}
}
