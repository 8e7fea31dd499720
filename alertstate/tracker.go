// Package alertstate keeps the daemon's alerts as they live: each alert by
// id with its status (firing, resolved), its value over time and the
// silences that held its notifications back. It sits between the engine,
// which emits each alert when it fires, escalates and resolves, and the
// notifiers: Tracker.Handle records an emission, checks it against the
// silences and passes it on unless silenced. It also serves /api/alerts
// and /api/silences (API).
package alertstate

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
)

// Event kinds, as Observe's subscribers hear them.
const (
	KindFiring    = alert.EventFiring
	KindEscalated = alert.EventEscalated
	KindResolved  = alert.EventResolved
	KindSilenced  = "silenced" // an emission a silence kept from the notifiers
)

// Event is a change of an alert: Alert is its state after the change and
// must not be changed.
type Event struct {
	Kind  string
	Alert *alert.Alert
}

// Point is an alert's value at an event time.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Defaults of Config's zero fields.
const (
	DefaultMaxAlerts = 1000
	DefaultMaxPoints = 240
)

// Config sets up a Tracker.
type Config struct {
	// MaxAlerts bounds the alerts kept; past it the oldest resolved one is
	// forgotten first, else the oldest (default DefaultMaxAlerts).
	MaxAlerts int
	// MaxPoints bounds each alert's series; past it every other point is
	// dropped (the first and the latest kept), so the series spans the
	// whole alert, older parts at a coarser step (default
	// DefaultMaxPoints).
	MaxPoints int
	// Silences, when set, hold back the notifications of the alerts they
	// match.
	Silences *Silences
	// Notify receives every emission no silence matched (the dispatcher's
	// Send). It must not block.
	Notify func(*alert.Alert)
	// Now is the wall clock silences are judged by (default time.Now).
	Now func() time.Time
}

// Tracker holds the alerts. Handle and Progress are called from the
// engine's goroutine; the rest from any.
type Tracker struct {
	cfg Config

	mu        sync.Mutex
	byID      map[string]*entry
	order     []*entry // by first arrival
	seq       uint64
	observers []func(Event)

	forgotten atomic.Uint64
	silenced  atomic.Uint64
}

type entry struct {
	seq    uint64 // arrival number: the API's cursor
	a      *alert.Alert
	series []Point
	sent   int // notifications sent
}

// New returns a Tracker.
func New(cfg Config) *Tracker {
	if cfg.MaxAlerts <= 0 {
		cfg.MaxAlerts = DefaultMaxAlerts
	}
	if cfg.MaxPoints <= 1 {
		cfg.MaxPoints = DefaultMaxPoints
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func(*alert.Alert) {}
	}
	return &Tracker{cfg: cfg, byID: map[string]*entry{}}
}

// Observe subscribes fn to every change; fn runs on the engine's
// goroutine, after the notifiers were handed the alert, and must not block
// (a subscriber that may be slow queues and drops).
func (t *Tracker) Observe(fn func(Event)) {
	t.mu.Lock()
	t.observers = append(t.observers, fn)
	t.mu.Unlock()
}

// Handle records one emission of an alert (engine.Config.Emit), sets its
// silenced_by and notifications, and hands it to Config.Notify unless a
// silence matches it, or it is the end of an alert whose notifications
// were all held back. a is the engine's new copy: Handle completes it
// before anyone else sees it, and nobody changes it afterwards.
func (t *Tracker) Handle(a *alert.Alert) {
	var ids []string
	if t.cfg.Silences != nil {
		ids = t.cfg.Silences.Matching(a, t.cfg.Now())
	}
	t.mu.Lock()
	e := t.byID[a.ID]
	known := e != nil
	if e == nil {
		t.seq++
		e = &entry{seq: t.seq}
		t.byID[a.ID] = e
		t.order = append(t.order, e)
		t.bound()
	}
	kind := a.Event
	if kind == "" {
		kind = KindFiring
	}
	// The end of an alert is sent when its start was, or when the tracker
	// forgot it (past MaxAlerts) and cannot tell.
	send := len(ids) == 0 && (kind != KindResolved || e.sent > 0 || !known)
	if len(ids) > 0 {
		kind = KindSilenced
		t.silenced.Add(1)
	}
	if send {
		e.sent++
	}
	a.SilencedBy = ids
	if a.SilencedBy == nil {
		a.SilencedBy = []string{}
	}
	a.Notifications = e.sent
	e.a = a
	at := a.LastSeen
	if a.EndedAt != nil {
		at = *a.EndedAt
	}
	t.point(e, at, a.Value)
	obs := t.observers
	t.mu.Unlock()
	if send {
		t.cfg.Notify(a)
	}
	for _, fn := range obs {
		fn(Event{Kind: kind, Alert: a})
	}
}

// Progress records a firing alert's value on an engine tick
// (engine.Config.Progress): its value, peak and last_seen in the stored
// alert, and a point of its series.
func (t *Tracker) Progress(p engine.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[p.ID]
	if e == nil || e.a.Resolved() {
		return
	}
	c := *e.a // the stored alert may be in a notifier's hands: copy
	c.Value, c.Peak = p.Value, max(p.Peak, c.Peak)
	if p.LastSeen.After(c.LastSeen) {
		c.LastSeen = p.LastSeen
	}
	e.a = &c
	t.point(e, p.At, p.Value)
}

// point appends to e's series, halving it when full.
func (t *Tracker) point(e *entry, at time.Time, v float64) {
	if n := len(e.series); n > 0 && !at.After(e.series[n-1].T) {
		e.series[n-1].V = v // same instant (or the clock went back): the latest value
		return
	}
	if len(e.series) >= t.cfg.MaxPoints {
		kept := e.series[:0]
		for i, p := range e.series {
			if i%2 == 0 || i == len(e.series)-1 {
				kept = append(kept, p)
			}
		}
		clear(e.series[len(kept):])
		e.series = kept
	}
	e.series = append(e.series, Point{T: at.UTC(), V: v})
}

// bound forgets alerts past MaxAlerts, the oldest resolved first.
func (t *Tracker) bound() {
	for len(t.order) > t.cfg.MaxAlerts {
		i := slices.IndexFunc(t.order, func(e *entry) bool { return e.a != nil && e.a.Resolved() })
		if i < 0 {
			i = 0
		}
		delete(t.byID, t.order[i].a.ID)
		t.order = slices.Delete(t.order, i, i+1)
		t.forgotten.Add(1)
	}
}

// Filter selects alerts for List: each set field must match.
type Filter struct {
	State    string     // alert.StatusFiring or alert.StatusResolved
	Severity string     //
	Rule     string     //
	Addr     netip.Addr // any group value or sample address
	Before   uint64     // only alerts that arrived before this cursor (0: from the newest)
	Limit    int        // at most this many (0: all)
}

func (f *Filter) keep(a *alert.Alert) bool {
	return (f.State == "" || a.Status == f.State) && (f.Severity == "" || a.Severity == f.Severity) &&
		(f.Rule == "" || a.Rule == f.Rule) && (!f.Addr.IsValid() || hasAddr(a, f.Addr))
}

// hasAddr reports whether addr is one of a's group values or its samples'
// addresses.
func hasAddr(a *alert.Alert, addr netip.Addr) bool {
	s := addr.String()
	for _, v := range a.Group {
		if v == s {
			return true
		}
	}
	for i := range a.Samples {
		if a.Samples[i].SrcAddr == addr || a.Samples[i].DstAddr == addr {
			return true
		}
	}
	return false
}

// List returns the alerts f selects, newest first.
func (t *Tracker) List(f Filter) []*alert.Alert {
	out, _ := t.Page(f)
	return out
}

// Page returns the alerts f selects, newest first, and the cursor of the
// next page (0: none).
func (t *Tracker) Page(f Filter) ([]*alert.Alert, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*alert.Alert
	var last uint64
	for i := len(t.order) - 1; i >= 0; i-- {
		e := t.order[i]
		if (f.Before != 0 && e.seq >= f.Before) || !f.keep(e.a) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			return out, last
		}
		out = append(out, e.a)
		last = e.seq
	}
	return out, 0
}

// Get returns an alert and its series.
func (t *Tracker) Get(id string) (*alert.Alert, []Point, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	if e == nil {
		return nil, nil, false
	}
	return e.a, slices.Clone(e.series), true
}

// Firing reports whether the alert of id is held and firing: false once
// it is resolved, forgotten (past MaxAlerts) or never seen. It is what the
// daemon hands the notifiers as notifiers.Deps.Firing.
func (t *Tracker) Firing(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	return e != nil && e.a != nil && !e.a.Resolved()
}

// Stats counts what the tracker holds and did.
type Stats struct {
	Alerts    int    // held now
	Firing    int    // of them firing
	Forgotten uint64 // dropped past MaxAlerts
	Silenced  uint64 // emissions held back by a silence
}

// Stats returns the tracker's figures.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Alerts: len(t.order), Forgotten: t.forgotten.Load(), Silenced: t.silenced.Load()}
	for _, e := range t.order {
		if !e.a.Resolved() {
			s.Firing++
		}
	}
	return s
}
