package main

import (
	"github.com/prometheus/client_golang/prometheus"

	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
)

// Counters the components keep of what they could not do: the Redis
// store's outages and losses, alerts no route took, alerts held back by
// rate limits, flows without any time.
var (
	redisConnected = prometheus.NewDesc("flowguard_redis_connected",
		"1 while Redis answers the store's flushes, 0 while windows are kept locally.", nil, nil)
	redisOutages = prometheus.NewDesc("flowguard_redis_outages_total",
		"Times Redis became unreachable.", nil, nil)
	redisFlushErrors = prometheus.NewDesc("flowguard_redis_flush_errors_total",
		"Flush commands that failed (an outage counts once).", nil, nil)
	redisLost = prometheus.NewDesc("flowguard_redis_lost_total",
		"Window deltas whose flush failed: other instances never saw them.", nil, nil)
	redisDropped = prometheus.NewDesc("flowguard_redis_dropped_total",
		"Window updates not recorded for flushing: store.redis.max_pending was reached.", nil, nil)
	notifyUnrouted = prometheus.NewDesc("flowguard_notifier_unrouted_total",
		"Alerts no route and no notifier took (or that came after the dispatcher closed).", nil, nil)
	notifyRateLimited = prometheus.NewDesc("flowguard_notifier_rate_limited_total",
		"Alerts held back by a notifier's rate_limit (sent as a summary).", []string{"notifier"}, nil)
	engineNoTime = prometheus.NewDesc("flowguard_engine_flows_without_time_total",
		"Flows skipped for want of any timestamp (start, end or receive time).", nil, nil)
)

// collectLosses reports those counters.
func (d *daemon) collectLosses(ch chan<- prometheus.Metric) {
	c := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	if rs, ok := d.store.(*rediswindow.Store); ok {
		st := rs.Stats()
		up := 0.0
		if st.Connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(redisConnected, prometheus.GaugeValue, up)
		c(redisOutages, st.Outages)
		c(redisFlushErrors, st.FlushErrors)
		c(redisLost, st.Lost)
		c(redisDropped, st.Dropped)
	}
	n := d.notify()
	c(notifyUnrouted, n.Unrouted())
	for _, s := range n.Stats() {
		c(notifyRateLimited, s.RateLimited, s.Name)
	}
	c(engineNoTime, d.engine.Stats().NoTime)
}
