package rediswindow

import "github.com/prometheus/client_golang/prometheus"

// Collector returns a prometheus.Collector of the store's counters, named
// flowguard_redis_*: what a daemon registers to show the store's work
// (commands and bytes per flow: divide by flowguard_engine_flows_total)
// and what the sharing scheme keeps local. It reads Stats at each scrape.
func (s *Store) Collector() prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s *Store }

// storeMetric is one metric of the collector: its descriptor, its type
// and how to read it from Stats.
type storeMetric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(Stats) float64
}

var storeMetrics = func() []storeMetric {
	counter := func(name, help string, val func(Stats) uint64) storeMetric {
		return storeMetric{prometheus.NewDesc("flowguard_redis_"+name, help, nil, nil), prometheus.CounterValue,
			func(st Stats) float64 { return float64(val(st)) }}
	}
	return []storeMetric{
		counter("commands_total", "Commands sent to Redis by flushes (script calls, heartbeat, hot-set reads).",
			func(st Stats) uint64 { return st.Commands }),
		counter("bytes_total", "Bytes of the keys and arguments of the commands sent to Redis by flushes.",
			func(st Stats) uint64 { return st.Bytes }),
		counter("updates_total", "Window updates (flows × rules with a window), sent or held.",
			func(st Stats) uint64 { return st.Updates }),
		counter("held_total", "Window updates of groups kept local: below their share of the threshold.",
			func(st Stats) uint64 { return st.Held }),
		counter("ship_starts_total", "Groups that started to ship: past their share, or announced by another instance.",
			func(st Stats) uint64 { return st.ShipStarts }),
		counter("hot_read_total", "Announcements of shipping groups read from the windows' hot sets.",
			func(st Stats) uint64 { return st.HotRead }),
		counter("ship_undercounts_total", "Groups that shipped without their earlier local part (too many shipping groups, or a HyperLogLog).",
			func(st Stats) uint64 { return st.ShipOverflow + st.ShipPartial }),
		counter("flushes_total", "Flushes that reached Redis.", func(st Stats) uint64 { return st.Flushes }),
		counter("sent_total", "Deltas (groups, distinct items) sent.", func(st Stats) uint64 { return st.Sent }),
		{prometheus.NewDesc("flowguard_redis_instances", "Live instances sharing the store, as of the latest heartbeat (0: none yet).", nil, nil),
			prometheus.GaugeValue, func(st Stats) float64 { return float64(st.Instances) }},
		{prometheus.NewDesc("flowguard_redis_pending", "Deltas waiting for the next flush.", nil, nil),
			prometheus.GaugeValue, func(st Stats) float64 { return float64(st.Pending) }},
		{prometheus.NewDesc("flowguard_redis_last_flush_seconds", "How long the latest flush took.", nil, nil),
			prometheus.GaugeValue, func(st Stats) float64 { return st.LastFlush.Seconds() }},
	}
}()

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range storeMetrics {
		ch <- m.desc
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for _, m := range storeMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(st))
	}
}
