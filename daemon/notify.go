package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/notifiers/stdout"
	"github.com/flowguard/flowguard/rules"
)

// notifiersConfig is the notifiers section and what stands in for it
// when it names none: stdout in the --format given.
type notifiersConfig struct {
	Notifiers notifiers.Config
	// Format is the stdout alerts' format (json or text) when the
	// section names no notifier.
	Format string
	// Source names the config file in errors.
	Source string
}

// notifiersConfigOf takes the notifiers' section of the config.
func notifiersConfigOf(c *config.Config, format, source string) notifiersConfig {
	return notifiersConfig{Notifiers: c.Notifiers, Format: format, Source: source}
}

// notifiersDeps are what the notifiers take besides their config.
type notifiersDeps struct {
	Logger  *slog.Logger
	Stdout  io.Writer // the stdout notifier's output
	Version string    // reported by the notifiers
	// Firing lets notifiers keep alerts alive elsewhere while the tracker
	// has them firing (alertmanager's endsAt); every reload's dispatcher
	// gets it again.
	Firing notifiers.FiringFunc
}

// notifierSet is the notifiers component: the dispatcher in service,
// which reloads swap (swap), and those it replaced, each delivering what
// it holds on a goroutine of its own until NotifierDrainTimeout or Stop's
// deadline. The dispatchers' own goroutines run from their build to their
// Close.
type notifierSet struct {
	cfg  notifiersConfig
	deps notifiersDeps
	cur  atomic.Pointer[notifiers.Dispatcher]

	drains      sync.WaitGroup // the replaced dispatchers' drains
	drainCtx    context.Context
	drainCancel context.CancelFunc
}

// newNotifierSet builds the dispatcher the config describes.
func newNotifierSet(cfg notifiersConfig, deps notifiersDeps) (*notifierSet, error) {
	s := &notifierSet{cfg: cfg, deps: deps}
	n, err := s.build(cfg.Notifiers)
	if err != nil {
		return nil, err
	}
	s.cur.Store(n)
	s.drainCtx, s.drainCancel = context.WithCancel(context.Background())
	return s, nil
}

// current returns the dispatcher in service.
func (s *notifierSet) current() *notifiers.Dispatcher { return s.cur.Load() }

// build builds the dispatcher a notifiers section describes, or one
// that writes to stdout when it names none.
func (s *notifierSet) build(c notifiers.Config) (*notifiers.Dispatcher, error) {
	deps := notifiers.Deps{Logger: s.deps.Logger, Stdout: s.deps.Stdout, Version: s.deps.Version, Firing: s.deps.Firing}
	if len(c.Notifiers) > 0 {
		n, err := notifiers.Build(c, deps)
		if err != nil {
			return nil, ConfigError{fmt.Errorf("%s: %w", s.cfg.Source, err)}
		}
		return n, nil
	}
	so, err := stdout.New("stdout", stdout.Config{Format: s.cfg.Format}, s.deps.Stdout)
	if err != nil {
		return nil, configErrorf("--format: %v", err)
	}
	return notifiers.New([]notifiers.Target{{Notifier: so, Type: "stdout"}}, nil, deps)
}

// swap puts next in service; the one it replaces delivers what it holds
// (or spools it) while new alerts go to next.
func (s *notifierSet) swap(next *notifiers.Dispatcher) {
	old := s.cur.Swap(next)
	s.drains.Go(func() {
		ctx, cancel := context.WithTimeout(s.drainCtx, NotifierDrainTimeout)
		defer cancel()
		if err := old.Close(ctx); err != nil {
			s.deps.Logger.Warn("notifiers replaced by a reload", "err", err)
		}
	})
}

// Name names the component.
func (s *notifierSet) Name() string { return "notifiers" }

// Start does nothing: the dispatcher delivers from its build.
func (s *notifierSet) Start(context.Context) error { return nil }

// Stop closes the dispatcher in service, delivering what it holds until
// ctx's deadline (the rest stays in its spools), and waits for the
// dispatchers reloads replaced until the same deadline.
func (s *notifierSet) Stop(ctx context.Context) error {
	err := s.current().Close(ctx)
	stop := context.AfterFunc(ctx, s.drainCancel)
	s.drains.Wait()
	stop()
	s.drainCancel()
	return err
}

// checkNotify rejects rules that name notifiers the dispatcher lacks.
func checkNotify(set *rules.Set, disp *notifiers.Dispatcher) error {
	var errs []error
	for _, r := range set.Rules {
		for _, n := range r.Notify {
			if !disp.Has(n) {
				errs = append(errs, fmt.Errorf("%s:%d: rule %q: notify: no notifier named %q", r.File, r.Line, r.ID, n))
			}
		}
	}
	if len(errs) > 0 {
		return ConfigError{errors.Join(errs...)}
	}
	return nil
}
