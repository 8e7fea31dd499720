package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/notifiers/alertmanager"
)

// The alertmanager notifiers' own counters (notifiers/README.md,
// "alertmanager"), beside the dispatcher's notifier_* metrics.
var (
	amActive        = amDesc("active", "Alerts kept active in Alertmanager: re-sent every resend_interval, resolved at their end.")
	amResent        = amDesc("resent_total", "Active alerts sent again.")
	amResolved      = amDesc("resolved_total", "Alerts sent with their endsAt passed and accepted.")
	amGivenUp       = amDesc("resolve_given_up_total", "Resolves no Alertmanager accepted within resend_interval after their end.")
	amEvicted       = amDesc("evicted_total", "Active alerts forgotten because max_active was reached.")
	amTruncated     = amDesc("truncated_values_total", "Label and annotation values cut to max_value_bytes.")
	amRequests      = amDesc("requests_total", "POSTs to single Alertmanagers.")
	amRequestErrors = amDesc("request_errors_total", "POSTs to single Alertmanagers that failed.")
)

func amDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("flowguard_alertmanager_"+name, help, []string{"notifier"}, nil)
}

// collectAlertmanagers reports the counters of every alertmanager notifier.
func collectAlertmanagers(d *notifiers.Dispatcher, ch chan<- prometheus.Metric) {
	for _, n := range d.Notifiers() {
		am, ok := n.(*alertmanager.Notifier)
		if !ok {
			continue
		}
		s, name := am.Stats(), am.Name()
		ch <- prometheus.MustNewConstMetric(amActive, prometheus.GaugeValue, float64(s.Active), name)
		for desc, v := range map[*prometheus.Desc]uint64{amResent: s.Resent, amResolved: s.Resolved, amGivenUp: s.GivenUp,
			amEvicted: s.Evicted, amTruncated: s.Truncated, amRequests: s.Requests, amRequestErrors: s.RequestErrors} {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), name)
		}
	}
}
