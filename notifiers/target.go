package notifiers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// spoolErrorLogInterval is how often, at most, a notifier logs spool
// errors; the repeats in between are counted (spool_errors) and the next
// line says how many were not logged.
const spoolErrorLogInterval = time.Minute

// spillFactor sizes the overflow of a notifier with a spool: alerts that
// find the memory queue full wait there for the spool writer, up to
// spillFactor × queue_size of them.
const spillFactor = 10

// target is one notifier with its queue and worker and, with a spool, its
// spooler.
//
// Without a spool, Send puts alerts on q and the worker takes them from
// there. With a spool, every alert is written to disk before it is
// delivered (write-ahead): the spooler takes alerts from q (and from
// spill, where they go when q is full), writes each to the spool and
// hands it to the worker through backlog; the worker removes the file once
// the notifier accepted the alert. A process killed at any point loses
// only what the spooler had not written yet (microseconds' worth).
type target struct {
	n   Notifier
	typ string
	d   Delivery
	log *slog.Logger

	q   chan *alert.Alert
	lim *limiter
	sp  *spool

	spillMu   sync.Mutex
	spill     []*alert.Alert // spool only: alerts that found q full
	spare     []*alert.Alert // the spooler's emptied batch, reused
	spilling  atomic.Bool    // spill is not empty: Send appends there, keeping order
	spillWake chan struct{}  // cap 1: spill has alerts

	bmu     sync.Mutex
	backlog []pending     // alerts for the worker, oldest first
	memOnly int           // backlog entries the spool refused (kept in memory)
	ready   chan struct{} // cap 1: the spooler added to backlog

	drain     chan struct{} // closed by Close: no more alerts will come
	flushed   chan struct{} // closed when every alert sent reached the worker's reach
	spoolDone chan struct{} // closed when the spooler has written all it got
	ctx       context.Context
	cancel    context.CancelFunc // aborts attempts when Close runs out of time
	done      chan struct{}

	// Worker-only state.
	left     int   // alerts not delivered at an aborted Close
	closeErr error // from Notifier.Close

	enqueued, sent, retried, failed, rateLimited atomic.Uint64
	dropQueueFull, dropSpoolFull, dropSpoolError atomic.Uint64
	dropShutdown, spoolErrors                    atomic.Uint64
	spooled                                      atomic.Int64 // files waiting on disk
	held                                         atomic.Int64 // alerts in memory only: spill and memOnly
	dropWarned                                   atomic.Bool
	spoolLog                                     logThrottle

	errMu   sync.Mutex
	lastErr string
}

// pending is an alert waiting for delivery: in memory (a), on disk (f)
// or both.
type pending struct {
	a   *alert.Alert
	f   spoolFile
	mem bool // counted in memOnly and held: the spool refused it
}

func newTarget(tc Target, log *slog.Logger) (*target, error) {
	d := tc.Delivery.withDefaults()
	if err := d.validate(); err != nil {
		return nil, err
	}
	t := &target{
		n: tc.Notifier, typ: tc.Type, d: d,
		log:       log.With("notifier", tc.Notifier.Name()),
		q:         make(chan *alert.Alert, d.QueueSize),
		spillWake: make(chan struct{}, 1),
		ready:     make(chan struct{}, 1),
		drain:     make(chan struct{}),
		spoolDone: make(chan struct{}),
		done:      make(chan struct{}),
		spoolLog:  logThrottle{every: spoolErrorLogInterval},
	}
	t.flushed = t.drain
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
		t.flushed = t.spoolDone
		for _, f := range files {
			t.backlog = append(t.backlog, pending{f: f})
		}
		t.spooled.Store(int64(len(files)))
		if len(files) > 0 {
			t.log.Info("notifiers: resending spooled alerts", "count", len(files))
		}
	}
	return t, nil
}

// start runs the worker and, with a spool, the spooler.
func (t *target) start() {
	if t.sp != nil {
		go t.spoolLoop()
	} else {
		close(t.spoolDone)
	}
	go t.run()
}

// offer queues a for the worker, or counts why not. Called from Send: it
// never blocks and allocates nothing while the queue has room.
func (t *target) offer(a *alert.Alert) {
	if t.lim != nil && !t.lim.allow(a, time.Now()) {
		t.rateLimited.Add(1)
		return
	}
	if t.sp != nil && t.spilling.Load() {
		t.spillIn(a) // behind alerts already spilled, in order
		return
	}
	select {
	case t.q <- a:
		t.enqueued.Add(1)
	default:
		if t.sp != nil {
			t.spillIn(a)
			return
		}
		t.dropQueueFull.Add(1)
		t.warnDrop("notifiers: queue full, dropping alerts", "queue_size", t.d.QueueSize)
	}
}

// spillIn holds a for the spooler when the queue is full, as long as the
// spool has room for it and the overflow is under spillFactor × queue_size.
func (t *target) spillIn(a *alert.Alert) {
	t.spillMu.Lock()
	waiting := int64(len(t.spill)) + int64(len(t.q))
	switch {
	case t.spooled.Load()+waiting >= int64(t.d.SpoolMax):
		t.spillMu.Unlock()
		t.dropSpoolFull.Add(1)
		t.warnDrop("notifiers: spool full, dropping alerts", "spool_max", t.d.SpoolMax)
		return
	case len(t.spill) >= spillFactor*max(t.d.QueueSize, 1):
		t.spillMu.Unlock()
		t.dropQueueFull.Add(1)
		t.warnDrop("notifiers: alerts arrive faster than the spool takes them, dropping alerts", "queue_size", t.d.QueueSize, "overflow", len(t.spill))
		return
	}
	t.spill = append(t.spill, a)
	t.spilling.Store(true)
	t.held.Add(1)
	t.spillMu.Unlock()
	t.enqueued.Add(1)
	select {
	case t.spillWake <- struct{}{}:
	default:
	}
}

// warnDrop logs the first drop of an episode; the counters have the rest.
func (t *target) warnDrop(msg string, args ...any) {
	if t.dropWarned.CompareAndSwap(false, true) {
		t.log.Warn(msg, args...)
	}
}

func (t *target) stats() Stats {
	t.errMu.Lock()
	le := t.lastErr
	t.errMu.Unlock()
	s := Stats{
		Name: t.n.Name(), Type: t.typ,
		Enqueued: t.enqueued.Load(), Sent: t.sent.Load(), Retried: t.retried.Load(),
		DroppedQueueFull: t.dropQueueFull.Load(), DroppedSpoolFull: t.dropSpoolFull.Load(),
		DroppedSpoolError: t.dropSpoolError.Load(), DroppedShutdown: t.dropShutdown.Load(),
		Failed: t.failed.Load(), RateLimited: t.rateLimited.Load(),
		Queued: len(t.q) + int(t.held.Load()), Spooled: int(t.spooled.Load()),
		SpoolErrors: t.spoolErrors.Load(), LastError: le,
	}
	if t.sp != nil {
		s.SpoolBytes = t.sp.bytes.Load()
	}
	s.Dropped = s.DroppedQueueFull + s.DroppedSpoolFull + s.DroppedSpoolError + s.DroppedShutdown
	return s
}

// spoolLoop is the spooler: it writes every alert to the spool as it
// arrives and hands it to the worker; at Close it writes what is left in
// the queue and the overflow, however long delivery is taking.
func (t *target) spoolLoop() {
	defer close(t.spoolDone)
	for {
		select {
		case a := <-t.q:
			t.writeAhead(a)
		case <-t.spillWake:
			t.takeSpill()
		case <-t.drain: // Send can no longer run: q and spill are final
			t.takeSpill()
			return
		}
	}
}

// takeSpill writes what the queue holds, then the overflow (newer).
func (t *target) takeSpill() {
	for {
		select {
		case a := <-t.q:
			t.writeAhead(a)
			continue
		default:
		}
		break
	}
	t.spillMu.Lock()
	batch := t.spill
	t.spill, t.spare = t.spare[:0], nil
	t.spilling.Store(false)
	t.spillMu.Unlock()
	for i, a := range batch {
		t.held.Add(-1)
		t.writeAhead(a)
		batch[i] = nil
	}
	t.spare = batch[:0]
}

// writeAhead writes a to the spool and hands it to the worker. When the
// disk refuses it, a waits in memory (up to queue_size such alerts) and
// the error is counted and logged at most once per interval.
func (t *target) writeAhead(a *alert.Alert) {
	if t.spooled.Load() >= int64(t.d.SpoolMax) {
		t.dropSpoolFull.Add(1)
		t.warnDrop("notifiers: spool full, dropping alerts", "spool_max", t.d.SpoolMax)
		return
	}
	f, err := t.sp.write(a, int64(t.d.SpoolMaxBytes))
	switch {
	case err == nil:
		t.spooled.Add(1)
		t.push(pending{a: a, f: f})
		if len(t.q) == 0 {
			t.dropWarned.Store(false)
		}
	case errors.Is(err, errSpoolFull):
		t.dropSpoolFull.Add(1)
		t.warnDrop("notifiers: spool full, dropping alerts", "spool_max_bytes", int64(t.d.SpoolMaxBytes))
	default:
		t.spoolErr("write", err)
		t.bmu.Lock()
		keep := t.memOnly < t.d.QueueSize
		if keep {
			t.memOnly++
		}
		t.bmu.Unlock()
		if !keep {
			t.dropSpoolError.Add(1)
			return
		}
		t.held.Add(1)
		t.push(pending{a: a, mem: true})
	}
}

// push appends p to the worker's backlog. Beyond queue_size entries, an
// alert on disk is not kept in memory too: the worker reads it back.
func (t *target) push(p pending) {
	t.bmu.Lock()
	if len(t.backlog) >= t.d.QueueSize && p.f.name != "" {
		p.a = nil
	}
	t.backlog = append(t.backlog, p)
	t.bmu.Unlock()
	select {
	case t.ready <- struct{}{}:
	default:
	}
}

// pop takes the oldest backlog entry.
func (t *target) pop() (pending, bool) {
	t.bmu.Lock()
	defer t.bmu.Unlock()
	if len(t.backlog) == 0 {
		return pending{}, false
	}
	p := t.backlog[0]
	t.backlog[0] = pending{}
	t.backlog = t.backlog[1:]
	return p, true
}

// spoolErr counts a spool failure and logs it, at most once per interval.
func (t *target) spoolErr(op string, err error) {
	n := t.spoolErrors.Add(1)
	if ok, suppressed := t.spoolLog.allow(time.Now()); ok {
		t.log.Error("notifiers: spool "+op+" failed", "err", err, "spool_errors", n,
			"not_logged", suppressed, "log_interval", t.spoolLog.every)
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
	var q <-chan *alert.Alert
	if t.sp == nil {
		q = t.q
	}
	for {
		if p, ok := t.pop(); ok {
			if p.a == nil {
				a, err := t.sp.read(p.f.name)
				if err != nil {
					t.spooled.Add(-1)
					if errors.Is(err, fs.ErrNotExist) {
						continue // delivered by the dispatcher a reload replaced
					}
					t.spoolErr("read (the file is renamed *.bad)", err)
					t.sp.quarantine(p.f)
					t.failed.Add(1)
					continue
				}
				p.a = a
			}
			return p, true
		}
		select {
		case a := <-q:
			if len(t.q) == 0 {
				t.dropWarned.Store(false)
			}
			return pending{a: a}, true
		case <-t.ready:
		case <-tick:
			for _, s := range t.lim.due(time.Now()) {
				t.push(pending{a: s})
			}
		case <-t.ctx.Done():
			return pending{}, false
		case <-t.flushed:
			if t.ctx.Err() != nil {
				return pending{}, false
			}
			if t.lim != nil { // send what the limiter holds back before closing
				for _, s := range t.lim.due(time.Now().Add(t.lim.interval)) {
					t.push(pending{a: s})
				}
			}
			t.bmu.Lock()
			waiting := len(t.backlog)
			t.bmu.Unlock()
			if waiting > 0 {
				continue
			}
			select {
			case a := <-q:
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
		if t.sp != nil && p.f.name == "" {
			t.toDisk(&p) // the spool may take it now
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

// sleep waits d; false when Close aborts.
func (t *target) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// toDisk writes an alert held in memory to the spool; false when it
// cannot.
func (t *target) toDisk(p *pending) bool {
	f, err := t.sp.write(p.a, int64(t.d.SpoolMaxBytes))
	if err != nil {
		if !errors.Is(err, errSpoolFull) {
			t.spoolErr("write", err)
		}
		return false
	}
	t.spooled.Add(1)
	t.release(p)
	p.f = f
	return true
}

// release forgets that p was held in memory only.
func (t *target) release(p *pending) {
	if !p.mem {
		return
	}
	p.mem = false
	t.held.Add(-1)
	t.bmu.Lock()
	t.memOnly--
	t.bmu.Unlock()
}

// settle forgets p once delivered or given up.
func (t *target) settle(p pending) {
	t.release(&p)
	if p.f.name == "" {
		return
	}
	if err := t.sp.remove(p.f); err != nil {
		t.spoolErr("remove (the alert may be sent again)", err)
	}
	t.spooled.Add(-1)
}

// keep saves p at an aborted Close: on disk, or counted as lost.
func (t *target) keep(p pending) {
	t.left++
	if p.f.name != "" || t.sp != nil && t.toDisk(&p) {
		return
	}
	t.release(&p)
	t.dropShutdown.Add(1)
}

// shutdown accounts for what is left and closes the notifier.
func (t *target) shutdown() {
	<-t.spoolDone // the spooler has written all it got
	if t.sp == nil {
		for {
			select {
			case a := <-t.q:
				t.keep(pending{a: a})
				continue
			default:
			}
			break
		}
	}
	for {
		p, ok := t.pop()
		if !ok {
			break
		}
		t.keep(p)
	}
	if n := t.spoolLog.flush(); n > 0 {
		t.log.Error("notifiers: spool errors not logged before shutdown", "not_logged", n, "spool_errors", t.spoolErrors.Load())
	}
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

// logThrottle lets one log line through per interval and counts the
// others.
type logThrottle struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many lines were held back
// since the last one logged.
func (l *logThrottle) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed, l.last = 0, now
	return true, n
}

// flush returns and resets the count of lines held back.
func (l *logThrottle) flush() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}
