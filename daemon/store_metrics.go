package daemon

import (
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
)

// The Redis store's metrics: its connection, outages and losses, and the
// store's own collector (commands, bytes, held updates: none for the
// memory store), and the enrichment's cache.

var (
	redisConnectedDesc = desc("redis_connected",
		"1 while Redis answers the store's flushes, 0 while windows are kept locally.")
	redisOutagesDesc     = desc("redis_outages_total", "Times Redis became unreachable.")
	redisFlushErrorsDesc = desc("redis_flush_errors_total", "Flush commands that failed (an outage counts once).")
	redisLostDesc        = desc("redis_lost_total", "Window deltas of flush calls Redis refused, or that got no reply and are not sent again (they may have run).")
	redisDroppedDesc     = desc("redis_dropped_total",
		"Window updates not recorded for flushing: store.redis.max_pending was reached.")
	exchangeDroppedDesc = desc("redis_exchange_dropped_total",
		"Groups whose other instances' totals rose past exchange_max_keys, compared at their next local flow only.")

	geoipHitsDesc   = desc("geoip_cache_hits_total", "GeoIP cache hits.")
	geoipMissesDesc = desc("geoip_cache_misses_total", "GeoIP cache misses.")
)

// storeMetrics reads the Redis store's stats.
func (d *Daemon) storeMetrics() metricSet {
	return func(m emit) {
		rs, ok := d.store.Store.(*rediswindow.Store)
		if !ok {
			return
		}
		st := rs.Stats()
		m.flag(redisConnectedDesc, st.Connected)
		m.counter(redisOutagesDesc, st.Outages)
		m.counter(redisFlushErrorsDesc, st.FlushErrors)
		m.counter(redisLostDesc, st.Lost)
		m.counter(redisDroppedDesc, st.Dropped)
		m.counter(exchangeDroppedDesc, st.ExchangeDropped)
		rs.Collector().Collect(m.ch)
	}
}

// enrichMetrics reads the enrichment's cache stats.
func (d *Daemon) enrichMetrics() metricSet {
	return func(m emit) {
		es := d.enrich.set.Stats()
		m.counter(geoipHitsDesc, es.GeoIP.CacheHits)
		m.counter(geoipMissesDesc, es.GeoIP.CacheMisses)
	}
}
