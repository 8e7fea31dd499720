package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/flow"
)

// loadConfig reads the config file; any error in it is a usage error.
func loadConfig(path string) (*config.Config, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// newLogger builds the daemon's logger from the log section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func timeSince(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return time.Since(t).Seconds()
}

// openStore opens the window store the config names. close flushes and
// releases it.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (window.Store, func(), error) {
	if cfg.Store.Redis == nil {
		s := window.NewMemoryStore()
		return s, func() { s.Close() }, nil
	}
	rc := *cfg.Store.Redis
	rc.Logger = log
	s, err := rediswindow.Open(ctx, rc)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("store: %w", err)}
	}
	return s, func() {
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.Flush(fctx)
		cancel()
		s.Close()
	}, nil
}

// pacer replays flows at speed times their own pace (0: as fast as
// possible), so that live notifiers and shared stores see a capture unfold
// as it happened.
type pacer struct {
	speed float64
	next  func([]flow.Flow)
	first int64
	start time.Time
	// ctx ends the pacing: once it is done, waits return at once and
	// flows are no longer handed on.
	ctx context.Context

	// idle, when set, runs every idleEvery (wall time) between batches and
	// while the pacer waits, on the goroutine that calls next: a shared
	// store's exchange with other instances.
	idle      func()
	idleEvery time.Duration
	idleAt    time.Time
}

// wait sleeps for d, running idle when it is due; it returns early when
// ctx is done.
func (p *pacer) wait(d time.Duration) {
	for end := time.Now().Add(d); ; {
		p.tick()
		left := time.Until(end)
		if left <= 0 {
			return
		}
		if p.idle != nil {
			left = min(left, p.idleEvery)
		}
		t := time.NewTimer(left)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// tick runs idle if it is due.
func (p *pacer) tick() {
	if p.idle == nil || time.Now().Before(p.idleAt) {
		return
	}
	p.idle()
	p.idleAt = time.Now().Add(p.idleEvery)
}

// sharedExchange returns what a replay runs while pacing and at its end
// so that groups of windows shared through Redis fire on other instances'
// totals as the daemon's do: the engine's exchange every flush interval,
// and a last flush and exchange. Both are nil for a memory store.
func sharedExchange(store window.Store, cfg *config.Config, exchange func() int) (idle func(), every time.Duration, last func(context.Context)) {
	s, ok := store.(*rediswindow.Store)
	if !ok {
		return nil, 0, nil
	}
	every = cfg.Store.Redis.FlushInterval
	if every <= 0 {
		every = rediswindow.DefaultFlushInterval
	}
	return func() { exchange() }, every, func(ctx context.Context) {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if s.Flush(fctx) == nil {
			exchange()
		}
	}
}

func (p *pacer) handle(b []flow.Flow) {
	if p.ctx.Err() != nil {
		return // interrupted: the source stops at its next check
	}
	if p.speed <= 0 {
		p.next(b)
		p.tick()
		return
	}
	from := 0
	for i := range b {
		et := b[i].EventTime()
		if et.IsZero() { // no timestamp: handed on with its neighbours, not paced
			continue
		}
		t := et.UnixNano()
		if p.first == 0 {
			p.first, p.start = t, time.Now()
		}
		due := p.start.Add(time.Duration(float64(t-p.first) / p.speed))
		if wait := time.Until(due); wait > time.Millisecond {
			p.next(b[from:i])
			from = i
			p.wait(wait)
			if p.ctx.Err() != nil {
				return
			}
		}
	}
	p.next(b[from:])
	p.tick()
}
