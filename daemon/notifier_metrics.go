package daemon

import (
	"github.com/flowguard/flowguard/notifiers/alertmanager"
)

// The notifiers' metrics: the dispatcher's per notifier (delivered,
// retried, dropped, waiting, spooled), alerts no route took, and the
// alertmanager notifiers' own counters (notifiers/README.md,
// "alertmanager").

var (
	ntf = []string{"notifier"}

	notifySentDesc        = desc("notifier_sent_total", "Alerts delivered.", ntf...)
	notifyRetriedDesc     = desc("notifier_retried_total", "Delivery attempts retried.", ntf...)
	notifyDroppedDesc     = desc("notifier_dropped_total", "Alerts dropped, by reason: queue_full, spool_full, spool_error, shutdown.", "notifier", "reason")
	notifyFailedDesc      = desc("notifier_failed_total", "Alerts given up on.", ntf...)
	notifyQueuedDesc      = desc("notifier_queued", "Alerts waiting in memory.", ntf...)
	notifySpooledDesc     = desc("notifier_spooled", "Alerts waiting on disk.", ntf...)
	notifySpoolErrorsDesc = desc("notifier_spool_errors_total",
		"Spool writes, reads and removals that failed (read-only directory, disk full, torn file).", ntf...)
	notifySpoolBytesDesc = desc("notifier_spool_bytes", "Size of the spool on disk.", ntf...)
	notifyUnroutedDesc   = desc("notifier_unrouted_total",
		"Alerts no route and no notifier took (or that came after the dispatcher closed).")
	notifyRateLimitedDesc = desc("notifier_rate_limited_total",
		"Alerts held back by a notifier's rate_limit (sent as a summary).", ntf...)

	amActiveDesc        = desc("alertmanager_active", "Alerts kept active in Alertmanager: re-sent every resend_interval, resolved at their end.", ntf...)
	amResentDesc        = desc("alertmanager_resent_total", "Active alerts sent again.", ntf...)
	amResolvedDesc      = desc("alertmanager_resolved_total", "Alerts sent with their endsAt passed and accepted.", ntf...)
	amGivenUpDesc       = desc("alertmanager_resolve_given_up_total", "Resolves no Alertmanager accepted within resend_interval after their end.", ntf...)
	amEvictedDesc       = desc("alertmanager_evicted_total", "Active alerts forgotten because max_active was reached.", ntf...)
	amTruncatedDesc     = desc("alertmanager_truncated_values_total", "Label and annotation values cut to max_value_bytes.", ntf...)
	amRequestsDesc      = desc("alertmanager_requests_total", "POSTs to single Alertmanagers.", ntf...)
	amRequestErrorsDesc = desc("alertmanager_request_errors_total", "POSTs to single Alertmanagers that failed.", ntf...)
)

// notifierMetrics reads the dispatcher in service.
func (d *Daemon) notifierMetrics() metricSet {
	return func(m emit) {
		disp := d.notify()
		for _, n := range disp.Stats() {
			m.counter(notifySentDesc, n.Sent, n.Name)
			m.counter(notifyRetriedDesc, n.Retried, n.Name)
			m.counter(notifyDroppedDesc, n.DroppedQueueFull, n.Name, "queue_full")
			m.counter(notifyDroppedDesc, n.DroppedSpoolFull, n.Name, "spool_full")
			m.counter(notifyDroppedDesc, n.DroppedSpoolError, n.Name, "spool_error")
			m.counter(notifyDroppedDesc, n.DroppedShutdown, n.Name, "shutdown")
			m.counter(notifySpoolErrorsDesc, n.SpoolErrors, n.Name)
			m.gauge(notifySpoolBytesDesc, float64(n.SpoolBytes), n.Name)
			m.counter(notifyFailedDesc, n.Failed, n.Name)
			m.gauge(notifyQueuedDesc, float64(n.Queued), n.Name)
			m.gauge(notifySpooledDesc, float64(n.Spooled), n.Name)
			m.counter(notifyRateLimitedDesc, n.RateLimited, n.Name)
		}
		m.counter(notifyUnroutedDesc, disp.Unrouted())
		for _, n := range disp.Notifiers() {
			am, ok := n.(*alertmanager.Notifier)
			if !ok {
				continue
			}
			s, name := am.Stats(), am.Name()
			m.gauge(amActiveDesc, float64(s.Active), name)
			m.counter(amResentDesc, s.Resent, name)
			m.counter(amResolvedDesc, s.Resolved, name)
			m.counter(amGivenUpDesc, s.GivenUp, name)
			m.counter(amEvictedDesc, s.Evicted, name)
			m.counter(amTruncatedDesc, s.Truncated, name)
			m.counter(amRequestsDesc, s.Requests, name)
			m.counter(amRequestErrorsDesc, s.RequestErrors, name)
		}
	}
}
