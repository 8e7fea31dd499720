package daemon

import "time"

// The daemon's own bounds on waiting, in one place. The configurable
// ones and their defaults are the config's: shutdown.timeout
// (config.DefaultShutdownTimeout), store.redis.flush_interval
// (rediswindow.DefaultFlushInterval), engine.allowed_lateness and
// future_tolerance (engine.DefaultAllowedLateness, DefaultFutureTolerance).
const (
	// StoreFlushTimeout bounds the last flush of a shared store's window
	// deltas, at stop and at a replay's end.
	StoreFlushTimeout = 2 * time.Second
	// HTTPDrainTimeout is how long requests in flight may finish at stop
	// (within the shutdown deadline) before they are cut.
	HTTPDrainTimeout = 2 * time.Second
	// NotifierDrainTimeout bounds how long notifiers no longer in service
	// (replaced by a reload, or a replay's --notify at its end) deliver
	// what they hold; the rest stays in their spools.
	NotifierDrainTimeout = 30 * time.Second
	// abortCloseTimeout bounds closing the notifiers of a start that
	// failed half way.
	abortCloseTimeout = 5 * time.Second
	// discardCloseTimeout bounds closing notifiers built only to be
	// checked or refused (config check, a refused reload).
	discardCloseTimeout = time.Second
	// pipelineStallAfter is how long batches may wait while the engine
	// processes no flow before /healthz calls the pipeline failing.
	pipelineStallAfter = 10 * time.Second
)
