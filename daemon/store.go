package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
)

func timeSince(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return time.Since(t).Seconds()
}

// OpenStore opens the window store the config names. close flushes (a
// Redis store hands over what it held back: rediswindow.Store.Handover)
// and releases it.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (window.Store, func(), error) {
	if cfg.Store.Redis == nil {
		s := window.NewMemoryStore()
		return s, func() { s.Close() }, nil
	}
	rc := *cfg.Store.Redis
	rc.Logger = log
	s, err := rediswindow.Open(ctx, rc)
	if err != nil {
		return nil, nil, ConfigError{fmt.Errorf("store: %w", err)}
	}
	return s, func() {
		fctx, cancel := context.WithTimeout(context.Background(), StoreFlushTimeout)
		s.Handover(fctx)
		cancel()
		s.Close()
	}, nil
}

// SharedExchange returns what a replay runs while pacing and at its end
// so that groups of windows shared through Redis fire on other instances'
// totals as the daemon's do: the engine's exchange every flush interval,
// and a last flush (a handover: rediswindow.Store.Handover) and exchange.
// Both are nil for a memory store.
func SharedExchange(store window.Store, exchange func() int) (idle func(), every time.Duration, last func(context.Context)) {
	s, ok := store.(*rediswindow.Store)
	if !ok {
		return nil, 0, nil
	}
	return func() { exchange() }, s.FlushInterval(), func(ctx context.Context) {
		fctx, cancel := context.WithTimeout(ctx, StoreFlushTimeout)
		defer cancel()
		if s.Handover(fctx) == nil {
			exchange()
		}
	}
}
