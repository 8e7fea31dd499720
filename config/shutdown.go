package config

import "time"

// DefaultShutdownTimeout is the stop deadline when the config sets none:
// a few seconds under the 30 s TimeoutStopSec of the systemd unit in
// examples/systemd, so that flowguard has spooled what it could not
// deliver before systemd would kill it.
const DefaultShutdownTimeout = 25 * time.Second

// Shutdown bounds how long `run` takes to stop on SIGTERM or SIGINT.
type Shutdown struct {
	// Timeout is the deadline of the whole stop: the HTTP server, the
	// listeners and the engine's queue stop first, then the notifiers
	// deliver what they hold until the deadline; what is left then stays
	// in the spool (or, for a notifier without one, is counted as
	// dropped). 0 means DefaultShutdownTimeout. Keep it below the service
	// manager's stop timeout.
	Timeout Duration `yaml:"timeout"`
}

// Deadline returns the stop deadline.
func (s Shutdown) Deadline() time.Duration {
	if s.Timeout <= 0 {
		return DefaultShutdownTimeout
	}
	return time.Duration(s.Timeout)
}
