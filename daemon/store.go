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

// storeConfig is the store section: Redis settings (defaults applied
// when the config was read, rediswindow.DefaultConfig), nil for the
// memory store.
type storeConfig struct {
	Redis *rediswindow.Config
}

// storeConfigOf takes the store's section of the config.
func storeConfigOf(c *config.Config) storeConfig {
	return storeConfig{Redis: c.Store.Redis}
}

// storeDeps are what the store takes besides its config.
type storeDeps struct {
	Logger *slog.Logger
}

// windowStore is the store component: the windows' store, memory or
// Redis, opened by newStore. It starts nothing (the Redis store's
// goroutines are its own from Open to Close); Stop flushes a shared
// store's last deltas and closes it.
type windowStore struct {
	window.Store
	close func()
}

// newStore opens the window store the config names; ctx bounds the
// connection to Redis.
func newStore(ctx context.Context, cfg storeConfig, deps storeDeps) (*windowStore, error) {
	if cfg.Redis == nil {
		s := window.NewMemoryStore()
		return &windowStore{Store: s, close: func() { s.Close() }}, nil
	}
	rc := *cfg.Redis
	rc.Logger = deps.Logger
	s, err := rediswindow.Open(ctx, rc)
	if err != nil {
		return nil, ConfigError{fmt.Errorf("store: %w", err)}
	}
	return &windowStore{Store: s, close: func() {
		fctx, cancel := context.WithTimeout(context.Background(), StoreFlushTimeout)
		s.Handover(fctx)
		cancel()
		s.Close()
	}}, nil
}

// Name names the component.
func (s *windowStore) Name() string { return "store" }

// Start does nothing: the store is open from newStore.
func (s *windowStore) Start(context.Context) error { return nil }

// Stop flushes and closes the store (a Redis store hands over what it
// held back: rediswindow.Store.Handover).
func (s *windowStore) Stop(context.Context) error {
	s.close()
	return nil
}

// OpenStore opens the window store the config names. close flushes (a
// Redis store hands over what it held back: rediswindow.Store.Handover)
// and releases it.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (window.Store, func(), error) {
	s, err := newStore(ctx, storeConfigOf(cfg), storeDeps{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return s.Store, s.close, nil
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
