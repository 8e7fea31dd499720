// Package alertmanager feeds alerts to Prometheus Alertmanager, the way
// Prometheus does: every alert is POSTed to /api/v2/alerts of every
// Alertmanager of a cluster, with labels (alertname = the rule id,
// severity, tags, the group's fields), annotations, startsAt, endsAt and a
// generatorURL; alerts still active are sent again periodically, and once
// more with their endsAt when it has passed, so that Alertmanager
// resolves them; while the daemon still has an alert firing
// (notifiers.Deps.Firing) each re-send moves its endsAt on. Requests are batched and bounded in alerts and bytes;
// basic auth, bearer token and TLS are supported, secrets stay out of
// errors.
package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

func init() {
	notifiers.Register("alertmanager", func(name string, settings *yaml.Node, deps notifiers.Deps) (notifiers.Notifier, error) {
		cfg := DefaultConfig()
		if err := notifiers.Decode(settings, &cfg); err != nil {
			return nil, err
		}
		return New(name, cfg, deps)
	})
}

// defaultLifetime is how long an alert whose window cannot be read stays
// active: Alertmanager's own resolve_timeout default.
const defaultLifetime = 5 * time.Minute

// Notifier sends alerts to the Alertmanagers of one cluster and keeps
// the active ones there until their end.
type Notifier struct {
	name   string
	cfg    *resolved
	client *http.Client
	red    notifiers.Redactor
	agent  string
	log    *slog.Logger
	now    func() time.Time
	firing notifiers.FiringFunc // nil: no extension past the timer end

	sendMu sync.Mutex // one request round (a batch to every Alertmanager) at a time; see resolve

	mu         sync.Mutex
	b          builder
	active     map[string]*entry
	lastResend time.Time

	loopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	closed   atomic.Bool

	resent, resolved, evicted, requests, requestErrors, givenUp atomic.Uint64
	evictWarned, truncWarned                                    atomic.Bool
}

// entry is an alert Alertmanager holds as active until end.
type entry struct {
	p    postable
	end  time.Time
	id   string        // flowguard's alert id (the latest of these labels)
	life time.Duration // window plus hold
}

// Stats are the notifier's own counters, beside the dispatcher's.
type Stats struct {
	// Active is how many alerts are kept for re-sending and resolving.
	Active int
	// Resent counts alerts sent again while active; Resolved counts
	// alerts sent with their endsAt passed and accepted.
	Resent, Resolved uint64
	// Evicted counts active alerts forgotten because max_active was
	// reached (Alertmanager still ends them at their endsAt).
	Evicted uint64
	// Truncated counts label and annotation values cut to max_value_bytes.
	Truncated uint64
	// Requests and RequestErrors count POSTs to single Alertmanagers.
	Requests, RequestErrors uint64
	// GivenUp counts resolves no Alertmanager accepted within
	// resend_interval after their end.
	GivenUp uint64
}

// New returns an alertmanager notifier. It touches no network until the
// first Notify.
func New(name string, cfg Config, deps notifiers.Deps) (*Notifier, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	client, err := cfg.TLS.HTTPClient(r.Timeout.D())
	if err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Notifier{
		name:   name,
		cfg:    r,
		client: client,
		agent:  "flowguard",
		log:    log.With("notifier", name),
		now:    time.Now,
		firing: deps.Firing,
		b:      builder{extra: r.Labels, external: r.external, maxValue: r.MaxValueBytes},
		active: map[string]*entry{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if deps.Version != "" {
		n.agent += "/" + deps.Version
	}
	n.red.Add(r.secrets...)
	return n, nil
}

// Name returns the notifier's name.
func (n *Notifier) Name() string { return n.name }

// Stats returns the notifier's counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	active, trunc := len(n.active), n.b.truncated
	n.mu.Unlock()
	return Stats{
		Active: active, Resent: n.resent.Load(), Resolved: n.resolved.Load(), Evicted: n.evicted.Load(),
		Truncated: trunc, Requests: n.requests.Load(), RequestErrors: n.requestErrors.Load(), GivenUp: n.givenUp.Load(),
	}
}

// Close stops re-sending and releases idle connections. Alerts stay
// active in Alertmanager until their endsAt: a restart of flowguard does
// not resolve them.
func (n *Notifier) Close() error {
	if n.closed.CompareAndSwap(false, true) {
		close(n.stop)
		n.loopOnce.Do(func() { close(n.done) }) // no loop started: nothing to wait for
		<-n.done
	}
	n.client.CloseIdleConnections()
	return nil
}

// lifetime is how long an alert stays active after it fired: its window
// plus hold.
func (n *Notifier) lifetime(a *alert.Alert) time.Duration {
	w, err := time.ParseDuration(a.Window)
	if err != nil || w <= 0 {
		w = defaultLifetime
	}
	return w + n.cfg.Hold.D()
}

// Notify sends the alerts to every Alertmanager; it succeeds when at
// least one accepted them (the cluster shares them; the others get them
// at the next re-send). An alert is active from its first_seen until its
// fired_at (or now, if later: replayed and spooled alerts) plus window
// plus hold; a new alert of the same labels (an escalation) extends it,
// and so does each re-send while Deps.Firing has it firing (round). A
// resolved alert is sent with its ended_at as endsAt (now at the latest)
// and forgotten: Alertmanager resolves it at once.
func (n *Notifier) Notify(ctx context.Context, alerts ...*alert.Alert) error {
	now := n.now()
	keys := make([]string, len(alerts))
	ents := make([]entry, len(alerts))
	n.mu.Lock()
	for i, a := range alerts {
		fired := a.FiredAt
		if fired.Before(now) {
			fired = now
		}
		e := entry{id: a.ID, life: n.lifetime(a)}
		e.end = fired.Add(e.life).UTC().Truncate(time.Millisecond)
		ended := a.Resolved() && a.EndedAt != nil
		e.p.Labels = n.b.labels(a)
		e.p.Annotations = n.b.annotations(a)
		e.p.GeneratorURL = n.b.generatorURL(a)
		e.p.StartsAt = a.FirstSeen.UTC()
		if e.p.StartsAt.IsZero() || e.p.StartsAt.After(now) {
			e.p.StartsAt = now.UTC()
		}
		keys[i] = identity(e.p.Labels)
		if old := n.active[keys[i]]; old != nil {
			if old.p.StartsAt.Before(e.p.StartsAt) {
				e.p.StartsAt = old.p.StartsAt
			}
			if old.end.After(e.end) {
				e.end = old.end
			}
		}
		if ended { // flowguard resolved it: endsAt is its end, whatever the timer said
			e.end = a.EndedAt.UTC().Truncate(time.Millisecond)
			if e.end.After(now) {
				e.end = now.UTC().Truncate(time.Millisecond)
			}
			// Forgotten before it is posted, so that no re-send picked
			// meanwhile follows it (resend); should the post fail, the
			// dispatcher retries this resolve.
			delete(n.active, keys[i])
		}
		e.p.EndsAt = e.end
		ents[i] = e
	}
	n.warnTruncated()
	n.mu.Unlock()
	ps := make([]postable, len(ents))
	for i := range ents {
		ps[i] = ents[i].p
	}
	if err := n.post(ctx, ps); err != nil {
		return err
	}
	n.mu.Lock()
	for i := range ents {
		e := ents[i]
		if alerts[i].Resolved() && alerts[i].EndedAt != nil {
			delete(n.active, keys[i]) // Alertmanager has its end
			n.resolved.Add(1)
			continue
		}
		n.active[keys[i]] = &e
	}
	n.evictOverflow()
	n.mu.Unlock()
	n.loopOnce.Do(func() { go n.loop() })
	return nil
}

// evictOverflow forgets the alerts that end first while more than
// max_active are kept. Called with mu held.
func (n *Notifier) evictOverflow() {
	for len(n.active) > n.cfg.MaxActive {
		var first string
		var end time.Time
		for k, e := range n.active {
			if first == "" || e.end.Before(end) {
				first, end = k, e.end
			}
		}
		delete(n.active, first)
		n.evicted.Add(1)
		if n.evictWarned.CompareAndSwap(false, true) {
			n.log.Warn("alertmanager: max_active reached, forgetting the alerts that end first", "max_active", n.cfg.MaxActive)
		}
	}
}

// warnTruncated logs the first value cut to max_value_bytes. Called with
// mu held.
func (n *Notifier) warnTruncated() {
	if n.b.truncated > 0 && n.truncWarned.CompareAndSwap(false, true) {
		n.log.Warn("alertmanager: label or annotation values cut to max_value_bytes", "max_value_bytes", n.cfg.MaxValueBytes)
	}
}

// loop re-sends active alerts every resend_interval and resolves those
// whose end has come.
// roundEvery is the pace of the rounds that resolve and re-send.
func (n *Notifier) roundEvery() time.Duration { return min(time.Second, n.cfg.ResendInterval.D()) }

// resolveGrace is how long after its end a resolve is still sent:
// resend_interval, and at least five rounds, so that a round late on a
// loaded machine does not give up a resolve it was about to send.
func (n *Notifier) resolveGrace() time.Duration {
	return max(n.cfg.ResendInterval.D(), 5*n.roundEvery())
}

func (n *Notifier) loop() {
	defer close(n.done)
	tick := n.roundEvery()
	t := time.NewTicker(tick)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.round(ctx)
		}
	}
}

// round sends the due resolves and, every resend_interval, the active
// alerts again. An alert flowguard still has firing (Deps.Firing) gets a
// later end with each re-send (see keep), and at once should its end have
// passed (a re-send that failed): Alertmanager does not end it while
// flowguard does not.
func (n *Notifier) round(ctx context.Context) {
	n.resolve(ctx)
	now := n.now()
	var picks []pick
	n.mu.Lock()
	resend := now.Sub(n.lastResend) >= n.cfg.ResendInterval.D()
	if resend {
		n.lastResend = now
	}
	for k, e := range n.active {
		due := !e.end.After(now)
		if (resend || due) && n.stillFiring(e) {
			e.end = now.Add(n.keep(e)).UTC().Truncate(time.Millisecond)
			e.p.EndsAt = e.end
			picks = append(picks, pick{k, e, e.p})
		} else if resend && !due {
			picks = append(picks, pick{k, e, e.p})
		}
	}
	n.mu.Unlock()
	n.resent.Add(uint64(n.resend(ctx, picks)))
}

// pick is an active alert as a round picked it for re-sending.
type pick struct {
	key string
	e   *entry
	p   postable
}

// resend posts picks to every Alertmanager, max_batch at a time, each
// batch under sendMu and without the alerts Notify resolved or replaced
// since they were picked (Notify forgets a resolved alert before it posts
// it): a re-send never reaches Alertmanager after its alert's resolve. It
// returns how many were accepted.
func (n *Notifier) resend(ctx context.Context, picks []pick) int {
	sent := 0
	for len(picks) > 0 {
		k := min(len(picks), n.cfg.MaxBatch)
		batch := make([]postable, 0, k)
		n.sendMu.Lock()
		n.mu.Lock()
		for _, pk := range picks[:k] {
			if n.active[pk.key] == pk.e {
				batch = append(batch, pk.p)
			}
		}
		n.mu.Unlock()
		bodies, err := n.encode(batch)
		for _, body := range bodies {
			if err == nil {
				err = n.sendAll(ctx, body)
			}
		}
		n.sendMu.Unlock()
		if err != nil {
			return sent
		}
		sent += len(batch)
		picks = picks[k:]
	}
	return sent
}

// stillFiring reports whether flowguard's record of alerts has e's alert
// firing; without that record (Deps.Firing nil) it does not.
func (n *Notifier) stillFiring(e *entry) bool {
	return n.firing != nil && e.id != "" && n.firing(e.id)
}

// keep is how far past a re-send a firing alert's end is set: its window
// plus hold, and at least four resend_intervals (as Prometheus does), so
// that an alert whose window is shorter than resend_interval, or a re-send
// or two that failed, does not end it in Alertmanager between re-sends.
func (n *Notifier) keep(e *entry) time.Duration {
	return max(e.life, 4*n.cfg.ResendInterval.D())
}

// resolve sends the alerts whose end has passed with that endsAt, and
// forgets those accepted. It holds sendMu from the moment it picks them,
// so a newer firing of the same labels (Notify) always reaches
// Alertmanager after the resolve, never before.
func (n *Notifier) resolve(ctx context.Context) {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	now := n.now()
	var ended []postable
	var keys []string
	n.mu.Lock()
	for k, e := range n.active {
		if e.end.After(now) || n.stillFiring(e) { // still firing: round extends it
			continue
		}
		if now.Sub(e.end) > n.resolveGrace() {
			delete(n.active, k)
			n.givenUp.Add(1)
			continue
		}
		ended = append(ended, e.p)
		keys = append(keys, k)
	}
	n.mu.Unlock()
	if len(ended) == 0 {
		return
	}
	bodies, err := n.encode(ended)
	for _, body := range bodies {
		if err == nil {
			err = n.sendAll(ctx, body)
		}
	}
	if err != nil {
		return // tried again next round
	}
	n.resolved.Add(uint64(len(ended)))
	n.mu.Lock()
	for i, k := range keys {
		if e := n.active[k]; e != nil && e.end.Equal(ended[i].EndsAt) {
			delete(n.active, k)
		}
	}
	n.mu.Unlock()
}

// post sends ps to every Alertmanager, batch by batch; between batches
// other senders may go (a long re-send never holds up a new alert for
// more than one request).
func (n *Notifier) post(ctx context.Context, ps []postable) error {
	bodies, err := n.encode(ps)
	if err != nil {
		return err
	}
	for _, body := range bodies {
		n.sendMu.Lock()
		err := n.sendAll(ctx, body)
		n.sendMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// encode cuts ps into request bodies (JSON arrays) of at most max_batch
// alerts and max_batch_bytes.
func (n *Notifier) encode(ps []postable) ([][]byte, error) {
	var bodies [][]byte
	var body []byte
	count := 0
	for i := range ps {
		one, err := json.Marshal(&ps[i])
		if err != nil {
			return nil, notifiers.Permanent(fmt.Errorf("alertmanager %s: encoding alert %s: %w", n.name, ps[i].Labels["alertname"], err))
		}
		if count > 0 && (count >= n.cfg.MaxBatch || len(body)+1+len(one)+1 > n.cfg.MaxBatchBytes) {
			bodies = append(bodies, append(body, ']'))
			body, count = nil, 0
		}
		if count == 0 {
			body = append(body, '[')
		} else {
			body = append(body, ',')
		}
		body = append(body, one...)
		count++
	}
	if count > 0 {
		bodies = append(bodies, append(body, ']'))
	}
	return bodies, nil
}

// sendAll POSTs body to every Alertmanager at once. It succeeds when one
// accepted it; it is permanent when every answer was.
func (n *Notifier) sendAll(ctx context.Context, body []byte) error {
	errs := make([]error, len(n.cfg.endpoints))
	var wg sync.WaitGroup
	for i, ep := range n.cfg.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.send(ctx, ep, body)
		}()
	}
	wg.Wait()
	permanent := true
	for _, err := range errs {
		if err == nil {
			return nil
		}
		permanent = permanent && notifiers.IsPermanent(err)
	}
	err := errors.Join(errs...)
	if permanent {
		return notifiers.Permanent(err)
	}
	return err
}

// send POSTs body to one Alertmanager. 2xx is success; 408, 429, 5xx and
// network errors are retryable; other answers are permanent.
func (n *Notifier) send(ctx context.Context, ep endpoint, body []byte) error {
	n.requests.Add(1)
	err := n.request(ctx, ep, body)
	if err != nil {
		n.requestErrors.Add(1)
	}
	return err
}

func (n *Notifier) request(ctx context.Context, ep endpoint, body []byte) error {
	h := make(http.Header, 2)
	h.Set("User-Agent", n.agent)
	switch {
	case n.cfg.BasicAuth.Username != "":
		r := http.Request{Header: h}
		r.SetBasicAuth(n.cfg.BasicAuth.Username, n.cfg.BasicAuth.Password)
	case n.cfg.BearerToken != "":
		h.Set("Authorization", "Bearer "+n.cfg.BearerToken)
	}
	if err := notifiers.PostJSON(ctx, n.client, ep.url, h, body, &n.red); err != nil {
		return n.red.Error(fmt.Errorf("alertmanager %s: POST %s: %w", n.name, ep.shown, err))
	}
	return nil
}
