// Package notifiers sends alerts to the places operators watch. Each
// notifier lives in a folder of its own (stdout/, and syslog/, snmptrap/,
// webhook/ as they come) with its config, validation and tests.
package notifiers

import (
	"context"

	"github.com/flowguard/flowguard/alert"
)

// Notifier delivers alerts. Notify may block (a network send); callers that
// must not block put a queue in front of it.
type Notifier interface {
	// Name is the notifier's configured name, used in routing and metrics.
	Name() string
	// Notify delivers alerts. A non-nil error means they were not all
	// delivered.
	Notify(ctx context.Context, alerts ...*alert.Alert) error
	// Close flushes and releases what the notifier holds.
	Close() error
}
