package main

import "github.com/prometheus/client_golang/prometheus"

// The notifiers' spool health, next to notifier_spooled: a spool that
// refuses writes shows here, not only in the log.
var (
	notifySpoolErrors = prometheus.NewDesc("flowguard_notifier_spool_errors_total",
		"Spool writes, reads and removals that failed (read-only directory, disk full, torn file).", []string{"notifier"}, nil)
	notifySpoolBytes = prometheus.NewDesc("flowguard_notifier_spool_bytes",
		"Size of the spool on disk.", []string{"notifier"}, nil)
)
