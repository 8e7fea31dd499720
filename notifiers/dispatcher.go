package notifiers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/flowguard/flowguard/alert"
)

// Dispatcher routes alerts to notifiers without ever making the caller
// wait. Each notifier has a bounded queue and a worker goroutine that
// delivers one alert at a time, in order, retrying failures with
// exponential backoff; with a spool directory, alerts that could not be
// delivered wait on disk, across restarts.
//
// Alerts handed to Send are shared by every notifier they go to and must
// not be changed afterwards.
type Dispatcher struct {
	mu     sync.RWMutex // Send holds it for reading; Close flips closed
	closed bool

	targets  []*target
	byName   map[string]*target
	routes   []route
	defaults []*target
	routeAll bool // no routes configured: every notifier gets every alert

	unrouted atomic.Uint64
	late     atomic.Uint64 // sent after Close
	log      *slog.Logger

	warnMu sync.Mutex
	warned map[string]bool
}

// Target is a built notifier with its delivery settings, for New.
type Target struct {
	Notifier Notifier
	// Type is the notifier's config type, reported in Stats.
	Type     string
	Delivery Delivery
}

// Build builds every notifier in cfg through the registry and starts a
// Dispatcher over them. Errors from all notifiers are reported at once,
// each naming the entry's line, index and name; nothing is left running
// after an error. Building touches no network, so Build followed by
// Close checks a configuration.
func Build(cfg Config, deps Deps) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		errs    []error
		targets []Target
	)
	for i, nc := range cfg.Notifiers {
		n, err := buildEntry(i, nc, deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		targets = append(targets, Target{Notifier: n, Type: nc.Type, Delivery: nc.Delivery})
	}
	if len(errs) == 0 {
		d, err := New(targets, cfg.Routes, deps)
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	for _, t := range targets {
		t.Notifier.Close()
	}
	return nil, errors.Join(errs...)
}

// buildEntry runs the factory of entry i of notifiers:.
func buildEntry(i int, nc NotifierConfig, deps Deps) (Notifier, error) {
	f, err := lookup(nc.Type)
	if err != nil {
		return nil, err
	}
	settings := nc.Settings
	n, err := f(nc.Name, &settings, deps)
	if err != nil {
		return nil, fmt.Errorf("line %d: notifiers[%d] %q (%s): %w", nc.Line, i, nc.Name, nc.Type, err)
	}
	return n, nil
}

// CheckSettings builds, and at once closes, every notifier of cfg whose
// type is known, and returns every factory's error (a type's unknown or
// invalid keys, an unset ${ENV}, an unreadable TLS file). Unlike Build it
// carries on past the errors Validate finds (a bad name, an unknown type, a
// route to nobody), so that a check reports everything at once.
func CheckSettings(cfg Config, deps Deps) error {
	var errs []error
	for i, nc := range cfg.Notifiers {
		if _, err := lookup(nc.Type); err != nil {
			continue // Validate reports it
		}
		n, err := buildEntry(i, nc, deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.Close()
	}
	return errors.Join(errs...)
}

// New starts a Dispatcher over already built notifiers. Routes name
// notifiers by their Name(). Zero delivery fields take DefaultDelivery's
// values.
func New(targets []Target, routes []Route, deps Deps) (*Dispatcher, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Dispatcher{byName: map[string]*target{}, log: log, warned: map[string]bool{}, routeAll: len(routes) == 0}
	var errs []error
	for _, tc := range targets {
		name := tc.Notifier.Name()
		if d.byName[name] != nil {
			errs = append(errs, fmt.Errorf("notifier %q: defined twice", name))
			continue
		}
		t, err := newTarget(tc, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("notifier %q: %w", name, err))
			continue
		}
		d.targets = append(d.targets, t)
		d.byName[name] = t
	}
	for i, r := range routes {
		for _, n := range r.Notifiers {
			if d.byName[n] == nil {
				errs = append(errs, fmt.Errorf("routes[%d]: notifiers: %q is not a configured notifier", i, n))
			}
		}
		c := compileRoute(r, d.byName)
		if r.Default {
			d.defaults = appendUnique(d.defaults, c.targets...)
		} else {
			d.routes = append(d.routes, c)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, t := range d.targets {
		t.start()
	}
	return d, nil
}

// Has reports whether a notifier of that name exists, so that rules'
// `notify:` lists can be checked when they load.
func (d *Dispatcher) Has(name string) bool { return d.byName[name] != nil }

// Send hands a to the notifiers its rule's Notify list names or, without
// one, to those the routes pick. It never blocks: an alert that finds a
// notifier's queue full goes to its spool or, without one, is dropped
// for that notifier and counted. It allocates nothing on the common path.
func (d *Dispatcher) Send(a *alert.Alert) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.late.Add(1)
		return
	}
	if len(a.Notify) > 0 {
		for i, name := range a.Notify {
			if dupName(a.Notify[:i], name) {
				continue
			}
			t := d.byName[name]
			if t == nil {
				d.unrouted.Add(1)
				d.warnOnce("unknown:"+name, "rule names an unknown notifier", "rule", a.Rule, "notifier", name)
				continue
			}
			t.offer(a)
		}
		return
	}
	if d.routeAll {
		for _, t := range d.targets {
			t.offer(a)
		}
		return
	}
	var buf [16]*target
	sel := buf[:0]
	matched := false
	for i := range d.routes {
		r := &d.routes[i]
		if !r.match(a) {
			continue
		}
		matched = true
		sel = appendUnique(sel, r.targets...)
		if !r.cont {
			break
		}
	}
	if !matched {
		sel = d.defaults
	}
	if len(sel) == 0 {
		d.unrouted.Add(1)
		return
	}
	for _, t := range sel {
		t.offer(a)
	}
}

func dupName(names []string, n string) bool {
	for _, m := range names {
		if m == n {
			return true
		}
	}
	return false
}

func (d *Dispatcher) warnOnce(key, msg string, args ...any) {
	d.warnMu.Lock()
	seen := d.warned[key]
	d.warned[key] = true
	d.warnMu.Unlock()
	if !seen {
		d.log.Warn("notifiers: "+msg, args...)
	}
}

// Stats is a snapshot of one notifier's delivery counters. Counters only
// grow; Queued and Spooled are current levels.
type Stats struct {
	Name string
	Type string
	// Enqueued counts alerts accepted into the queue.
	Enqueued uint64
	// Sent counts alerts the notifier accepted.
	Sent uint64
	// Retried counts failed attempts that were retried.
	Retried uint64
	// Dropped counts alerts lost without an attempt: the sum of the four
	// reasons below.
	Dropped uint64
	// DroppedQueueFull: the memory queue was full and there is no spool
	// (or alerts came faster than the spool took them, beyond an overflow
	// of 10 × queue_size).
	DroppedQueueFull uint64
	// DroppedSpoolFull: the spool held spool_max alerts or spool_max_bytes.
	DroppedSpoolFull uint64
	// DroppedSpoolError: the spool failed (read-only, disk full) and
	// queue_size alerts already waited in memory.
	DroppedSpoolError uint64
	// DroppedShutdown: not delivered by the shutdown deadline and not
	// written to a spool.
	DroppedShutdown uint64
	// Failed counts alerts given up after a permanent error or retry.max_elapsed.
	Failed uint64
	// RateLimited counts alerts held back by rate_limit (summarised).
	RateLimited uint64
	// Queued is how many alerts wait in memory only now: in the queue, or
	// held because the spool refused them.
	Queued int
	// Spooled is how many alerts wait on disk now (with a spool, every
	// alert not yet delivered, including the one being delivered).
	Spooled int
	// SpoolBytes is the spool's size on disk.
	SpoolBytes int64
	// SpoolErrors counts failed spool writes, reads and removals
	// (read-only directory, disk full, a torn file); the log shows at most
	// one a minute.
	SpoolErrors uint64
	// LastError is the latest delivery error ("" after a success); notifiers
	// keep secrets out of it.
	LastError string
}

// Stats returns every notifier's counters, in configuration order.
func (d *Dispatcher) Stats() []Stats {
	out := make([]Stats, len(d.targets))
	for i, t := range d.targets {
		out[i] = t.stats()
	}
	return out
}

// Unrouted counts alerts no route (or an unknown name in a rule's notify
// list) sent anywhere, and alerts sent after Close.
func (d *Dispatcher) Unrouted() uint64 { return d.unrouted.Load() + d.late.Load() }

// Reopen reopens the files of notifiers that hold one (after log
// rotation, on SIGHUP).
func (d *Dispatcher) Reopen() error {
	var errs []error
	for _, t := range d.targets {
		if r, ok := t.n.(Reopener); ok {
			if err := r.Reopen(); err != nil {
				errs = append(errs, fmt.Errorf("notifier %q: %w", t.n.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops taking alerts and delivers what is queued, then closes the
// notifiers. When ctx ends first, attempts in flight are cancelled and
// what is left is spooled (or, without a spool, dropped and counted); the
// error then says how many alerts were left.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	for _, t := range d.targets {
		close(t.drain)
	}
	done := make(chan struct{})
	go func() {
		for _, t := range d.targets {
			<-t.done
		}
		close(done)
	}()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		for _, t := range d.targets {
			t.cancel()
		}
		<-done
		left, lost := 0, uint64(0)
		for _, t := range d.targets {
			left += t.left
			lost += t.dropShutdown.Load()
		}
		errs = append(errs, fmt.Errorf("notifiers: closing: %w: %d alerts not delivered: %d kept in the spool, %d dropped",
			ctx.Err(), left, uint64(left)-lost, lost))
	}
	for _, t := range d.targets {
		if t.closeErr != nil {
			errs = append(errs, fmt.Errorf("notifier %q: %w", t.n.Name(), t.closeErr))
		}
	}
	return errors.Join(errs...)
}

// Notifiers returns the notifiers in configuration order, for metrics of
// their own (see the alertmanager notifier's Stats).
func (d *Dispatcher) Notifiers() []Notifier {
	out := make([]Notifier, len(d.targets))
	for i, t := range d.targets {
		out[i] = t.n
	}
	return out
}
