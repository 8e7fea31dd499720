// Package notifiers sends alerts to the places operators watch: a SIEM
// (syslog/), an NMS (snmptrap/), chat and incident tools (webhook/), a
// terminal (stdout/) or a file (file/). Each notifier lives in a folder of
// its own with its config, validation and tests, and registers a
// constructor for its config `type:` here (see Register).
//
// The Dispatcher sits between the engine and the notifiers: Send routes an
// alert to notifiers by rule, severity and tags, and never blocks; each
// notifier has its own bounded queue, worker, retry with backoff, rate
// limit and optional on-disk spool.
package notifiers

import (
	"context"
	"errors"

	"github.com/flowguard/flowguard/alert"
)

// Notifier delivers alerts. Notify may block (a network send); the
// Dispatcher puts a queue in front of it, so the engine never waits.
//
// An error from Notify is retried with backoff unless it is marked
// Permanent (a 4xx answer, an alert the receiver cannot take).
type Notifier interface {
	// Name is the notifier's configured name, used in routing and metrics.
	Name() string
	// Notify delivers alerts. A non-nil error means they were not all
	// delivered. Notify must return when ctx is done.
	Notify(ctx context.Context, alerts ...*alert.Alert) error
	// Close flushes and releases what the notifier holds.
	Close() error
}

// Reopener is a Notifier that holds a file open and can reopen it after
// log rotation (the daemon calls Dispatcher.Reopen on SIGHUP).
type Reopener interface {
	Reopen() error
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the Dispatcher drops the
// alert (counted as failed) instead of backing off. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
