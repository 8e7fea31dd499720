package notifiers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
		f, _ := lookup(nc.Type) // Validate checked it
		settings := nc.Settings
		n, err := f(nc.Name, &settings, deps)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: notifiers[%d] %q (%s): %w", nc.Line, i, nc.Name, nc.Type, err))
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
		go t.run()
	}
	return d, nil
}

// Has reports whether a notifier of that name exists, so that rules'
// `notify:` lists can be checked when they load.
func (d *Dispatcher) Has(name string) bool { return d.byName[name] != nil }

// Send hands a to the notifiers its rule's Notify list names or, without
// one, to those the routes pick. It never blocks: an alert that finds a
// notifier's queue full is dropped for that notifier and counted. It
// allocates nothing on the common path.
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
	// Dropped counts alerts lost without an attempt: queue full, spool full,
	// or undeliverable at Close without a spool.
	Dropped uint64
	// Failed counts alerts given up after a permanent error or retry.max_elapsed.
	Failed uint64
	// RateLimited counts alerts held back by rate_limit (summarised).
	RateLimited uint64
	// Queued is how many alerts wait in memory now.
	Queued int
	// Spooled is how many alerts wait on disk now.
	Spooled int
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
		left := 0
		for _, t := range d.targets {
			left += t.left
		}
		errs = append(errs, fmt.Errorf("notifiers: closing: %w: %d alerts not delivered (kept in the spool where one is configured)", ctx.Err(), left))
	}
	for _, t := range d.targets {
		if t.closeErr != nil {
			errs = append(errs, fmt.Errorf("notifier %q: %w", t.n.Name(), t.closeErr))
		}
	}
	return errors.Join(errs...)
}

// target is one notifier with its queue and worker.
type target struct {
	n   Notifier
	typ string
	d   Delivery
	log *slog.Logger

	q   chan *alert.Alert
	lim *limiter
	sp  *spool

	drain  chan struct{} // closed by Close: no more alerts will come
	ctx    context.Context
	cancel context.CancelFunc // aborts attempts when Close runs out of time
	done   chan struct{}

	// Worker-only state.
	backlog  []pending
	left     int   // alerts not delivered at an aborted Close
	closeErr error // from Notifier.Close

	enqueued, sent, retried, dropped, failed, rateLimited atomic.Uint64
	spooled                                               atomic.Int64
	dropWarned                                            atomic.Bool

	errMu   sync.Mutex
	lastErr string
}

// pending is an alert waiting for delivery: in memory (a), on disk (file)
// or both.
type pending struct {
	a    *alert.Alert
	file string
}

func newTarget(tc Target, log *slog.Logger) (*target, error) {
	d := tc.Delivery.withDefaults()
	if err := d.validate(); err != nil {
		return nil, err
	}
	t := &target{
		n: tc.Notifier, typ: tc.Type, d: d,
		log:   log.With("notifier", tc.Notifier.Name()),
		q:     make(chan *alert.Alert, d.QueueSize),
		drain: make(chan struct{}),
		done:  make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if d.RateLimit.PerRule > 0 {
		t.lim = newLimiter(tc.Notifier.Name(), d.RateLimit)
	}
	if d.SpoolDir != "" {
		sp, files, err := openSpool(filepath.Join(d.SpoolDir, tc.Notifier.Name()))
		if err != nil {
			return nil, fmt.Errorf("delivery.spool_dir: %w", err)
		}
		t.sp = sp
		for _, f := range files {
			t.backlog = append(t.backlog, pending{file: f})
		}
		t.spooled.Store(int64(len(files)))
		if len(files) > 0 {
			t.log.Info("notifiers: resending spooled alerts", "count", len(files))
		}
	}
	return t, nil
}

// offer queues a for the worker, or counts why not. Called from Send.
func (t *target) offer(a *alert.Alert) {
	if t.lim != nil && !t.lim.allow(a, time.Now()) {
		t.rateLimited.Add(1)
		return
	}
	select {
	case t.q <- a:
		t.enqueued.Add(1)
	default:
		t.dropped.Add(1)
		if t.dropWarned.CompareAndSwap(false, true) {
			t.log.Warn("notifiers: queue full, dropping alerts", "queue_size", t.d.QueueSize)
		}
	}
}

func (t *target) stats() Stats {
	t.errMu.Lock()
	le := t.lastErr
	t.errMu.Unlock()
	return Stats{
		Name: t.n.Name(), Type: t.typ,
		Enqueued: t.enqueued.Load(), Sent: t.sent.Load(), Retried: t.retried.Load(),
		Dropped: t.dropped.Load(), Failed: t.failed.Load(), RateLimited: t.rateLimited.Load(),
		Queued: len(t.q), Spooled: int(t.spooled.Load()), LastError: le,
	}
}

// run is the worker: it takes alerts in order (the spool's backlog
// first) and delivers each until it is accepted or given up.
func (t *target) run() {
	defer close(t.done)
	var tick <-chan time.Time
	if t.lim != nil {
		tk := time.NewTicker(max(t.lim.interval/4, 10*time.Millisecond))
		defer tk.Stop()
		tick = tk.C
	}
	for {
		if t.sp != nil && len(t.backlog) > 0 {
			t.absorb() // alerts queued behind a backlog wait on disk, in order
		}
		p, ok := t.next(tick)
		if !ok {
			break
		}
		t.deliver(p)
		if t.ctx.Err() != nil {
			break
		}
	}
	t.shutdown()
}

// next returns the next alert to deliver; false when the worker should stop.
func (t *target) next(tick <-chan time.Time) (pending, bool) {
	for {
		if len(t.backlog) > 0 {
			p := t.backlog[0]
			t.backlog[0] = pending{}
			t.backlog = t.backlog[1:]
			if p.a == nil {
				a, err := t.sp.read(p.file)
				if err != nil {
					t.log.Error("notifiers: unreadable spool file set aside", "file", p.file, "err", err)
					t.sp.quarantine(p.file)
					t.spooled.Add(-1)
					t.failed.Add(1)
					continue
				}
				p.a = a
			}
			return p, true
		}
		select {
		case a := <-t.q:
			if len(t.q) == 0 {
				t.dropWarned.Store(false)
			}
			return pending{a: a}, true
		case <-tick:
			for _, s := range t.lim.due(time.Now()) {
				t.backlog = append(t.backlog, pending{a: s})
			}
		case <-t.ctx.Done():
			return pending{}, false
		case <-t.drain:
			if t.ctx.Err() != nil {
				return pending{}, false
			}
			if t.lim != nil { // send what the limiter holds back before closing
				for _, s := range t.lim.due(time.Now().Add(t.lim.interval)) {
					t.backlog = append(t.backlog, pending{a: s})
				}
			}
			if len(t.backlog) > 0 {
				continue
			}
			select {
			case a := <-t.q:
				return pending{a: a}, true
			default:
				return pending{}, false
			}
		}
	}
}

// deliver tries p until it is accepted, given up, or Close aborts.
func (t *target) deliver(p pending) {
	wait := t.d.Retry.Initial.D()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(t.ctx, t.d.Timeout.D())
		err := t.n.Notify(ctx, p.a)
		cancel()
		if err == nil {
			t.sent.Add(1)
			t.settle(p)
			t.noteErr(nil)
			return
		}
		if t.ctx.Err() != nil { // Close ran out of time: keep it for later
			t.keep(p)
			return
		}
		t.noteErr(err)
		if IsPermanent(err) {
			t.failed.Add(1)
			t.log.Error("notifiers: alert not deliverable, dropped", "alert", p.a.ID, "rule", p.a.Rule, "err", err)
			t.settle(p)
			return
		}
		if me := t.d.Retry.MaxElapsed.D(); me > 0 && time.Since(start) >= me {
			t.failed.Add(1)
			t.log.Error("notifiers: giving up on alert after retry.max_elapsed", "alert", p.a.ID, "rule", p.a.Rule, "max_elapsed", me)
			t.settle(p)
			return
		}
		t.retried.Add(1)
		if t.sp != nil && p.file == "" {
			p.file = t.persist(p.a)
		}
		if !t.sleep(jitter(wait)) {
			t.keep(p)
			return
		}
		wait = min(wait*2, t.d.Retry.Max.D())
	}
}

// jitter spreads d by ±20% so that notifiers sharing a receiver do not
// retry in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d; with a spool, alerts arriving meanwhile go to disk so
// that the queue never fills during an outage. False when Close aborts.
func (t *target) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var q <-chan *alert.Alert
	if t.sp != nil {
		q = t.q
	}
	for {
		select {
		case <-timer.C:
			return true
		case a := <-q:
			t.spoolIn(a)
		case <-t.ctx.Done():
			return false
		}
	}
}

// absorb moves what is queued to the spool backlog, without waiting.
func (t *target) absorb() {
	for {
		select {
		case a := <-t.q:
			t.spoolIn(a)
		default:
			return
		}
	}
}

// spoolIn appends a to the backlog, on disk when it can.
func (t *target) spoolIn(a *alert.Alert) {
	if int(t.spooled.Load()) >= t.d.SpoolMax {
		t.dropped.Add(1)
		return
	}
	if f := t.persist(a); f != "" {
		t.backlog = append(t.backlog, pending{file: f})
		return
	}
	if len(t.backlog) < t.d.QueueSize { // the disk failed: hold some in memory
		t.backlog = append(t.backlog, pending{a: a})
		return
	}
	t.dropped.Add(1)
}

// persist writes a to the spool and returns its file ("" on failure).
func (t *target) persist(a *alert.Alert) string {
	f, err := t.sp.write(a)
	if err != nil {
		t.log.Error("notifiers: spool write failed", "err", err)
		return ""
	}
	t.spooled.Add(1)
	return f
}

// settle forgets p once delivered or given up.
func (t *target) settle(p pending) {
	if p.file == "" {
		return
	}
	if err := t.sp.remove(p.file); err != nil {
		t.log.Error("notifiers: spool remove failed; the alert may be sent again", "err", err)
	}
	t.spooled.Add(-1)
}

// keep saves p at an aborted Close: on disk, or counted as lost.
func (t *target) keep(p pending) {
	if p.file != "" {
		t.left++
		return
	}
	if t.sp != nil && t.persist(p.a) != "" {
		t.left++
		return
	}
	t.left++
	t.dropped.Add(1)
}

// shutdown accounts for what is left and closes the notifier.
func (t *target) shutdown() {
	for {
		select {
		case a := <-t.q:
			t.keep(pending{a: a})
			continue
		default:
		}
		break
	}
	for _, p := range t.backlog {
		t.keep(p)
	}
	t.backlog = nil
	t.closeErr = t.n.Close()
}

// noteErr records the latest error and logs only when it changes, so an
// outage is one log line, not one per attempt.
func (t *target) noteErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	t.errMu.Lock()
	prev := t.lastErr
	t.lastErr = msg
	t.errMu.Unlock()
	switch {
	case msg == prev:
	case err == nil:
		t.log.Info("notifiers: delivering again")
	default:
		t.log.Warn("notifiers: delivery failed, retrying", "err", msg)
	}
}
