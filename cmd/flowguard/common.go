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
}

func (p *pacer) handle(b []flow.Flow) {
	if p.speed <= 0 {
		p.next(b)
		return
	}
	from := 0
	for i := range b {
		t := b[i].EventTime().UnixNano()
		if t == 0 {
			continue
		}
		if p.first == 0 {
			p.first, p.start = t, time.Now()
		}
		due := p.start.Add(time.Duration(float64(t-p.first) / p.speed))
		if wait := time.Until(due); wait > time.Millisecond {
			p.next(b[from:i])
			from = i
			time.Sleep(wait)
		}
	}
	p.next(b[from:])
}
