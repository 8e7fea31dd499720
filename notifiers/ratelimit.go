package notifiers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// limiter lets at most per alerts of one rule through per interval (a
// fixed window that starts with the rule's first alert) and turns the
// rest into one summary alert per rule and window, so that a storm of
// one rule is a handful of messages and a count.
type limiter struct {
	notifier string
	per      int
	interval time.Duration

	mu    sync.Mutex
	rules map[string]*bucket
	ready []*alert.Alert
}

type bucket struct {
	start      time.Time // wall clock: when the window opened
	passed     int
	suppressed int
	// About the suppressed alerts, for the summary.
	name, severity string
	tags           []string
	first, last    time.Time // their fired_at (event time)
}

func newLimiter(notifier string, rl RateLimit) *limiter {
	return &limiter{notifier: notifier, per: rl.PerRule, interval: rl.Interval.D(), rules: map[string]*bucket{}}
}

// allow reports whether a may be sent now.
func (l *limiter) allow(a *alert.Alert, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.rules[a.Rule]
	switch {
	case b == nil:
		b = &bucket{start: now}
		l.rules[a.Rule] = b
	case now.Sub(b.start) >= l.interval:
		l.roll(a.Rule, b)
		*b = bucket{start: now}
	}
	if b.passed < l.per {
		b.passed++
		return true
	}
	if b.suppressed == 0 {
		b.first = a.FiredAt
	}
	b.suppressed++
	b.name, b.severity, b.tags, b.last = a.Name, a.Severity, a.Tags, a.FiredAt
	return false
}

// due returns the summaries of windows that have ended, and forgets
// rules that have been quiet for a whole window.
func (l *limiter) due(now time.Time) []*alert.Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	for rule, b := range l.rules {
		if now.Sub(b.start) >= l.interval {
			l.roll(rule, b)
			delete(l.rules, rule)
		}
	}
	out := l.ready
	l.ready = nil
	return out
}

// roll queues the summary of b's window, if it suppressed anything.
func (l *limiter) roll(rule string, b *bucket) {
	if b.suppressed == 0 {
		return
	}
	id := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", l.notifier, rule, b.start.UnixNano()))
	l.ready = append(l.ready, &alert.Alert{
		ID:        hex.EncodeToString(id[:8]),
		Rule:      rule,
		Name:      b.name + " (rate limited)",
		Severity:  b.severity,
		Tags:      b.tags,
		Group:     map[string]any{"rate_limited": b.suppressed},
		Value:     float64(b.suppressed),
		Threshold: float64(l.per),
		Window:    l.interval.String(),
		FirstSeen: b.first,
		LastSeen:  b.last,
		FiredAt:   b.last,
		Message: fmt.Sprintf("%d more alerts of rule %s were not sent to %s: rate limit of %d per %s",
			b.suppressed, rule, l.notifier, l.per, l.interval),
	})
}
