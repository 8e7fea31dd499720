package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/alertstate"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/kafka"
	"github.com/flowguard/flowguard/lifecycle"
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all" // registers every notifier type
)

// Daemon is flowguard's collector: listeners, pipeline and engine,
// enrichment, store, notifiers and the HTTP API, built by New from a
// config and run by Run until its context ends.
type Daemon struct {
	cfg     *config.Config
	cfgPath string
	log     *slog.Logger
	opts    Options

	// Extensions added before Run (see README.md).
	handlers       []handler
	streams        []stream
	collectors     []prometheus.Collector
	flowObservers  []func([]flow.Flow)
	alertObservers []func(*alert.Alert)

	// The components (see components for their order).
	notifiers  *notifierSet
	enrich     *enrichment
	store      *windowStore
	engine     *enginePipeline
	learnStats engine.LearnedStoreStats
	listeners  *listenerSet
	kafka      *kafka.Source // nil without ingest.kafka
	api        *apiServer    // nil: http.listen is off
	started    time.Time

	// The alerts as they live and the silences (alertstate): every
	// emission of the engine goes through the tracker to the notifiers.
	tracker  *alertstate.Tracker
	silences *alertstate.Silences
	rates    rateMeter
	health   health
	lastErr  atomic.Pointer[string]

	// The exporters /metrics always names.
	knownExporters atomic.Pointer[map[netip.Addr]bool] // recomputed on reload

	rulePaths   atomic.Pointer[[]string] // as loaded; read by the API
	loadedStamp string                   // the files as they were when start read them
	ruleCount   atomic.Int64
	thresholds  atomic.Pointer[map[string]float64] // rule id -> threshold, for /api/rules
	alerts      atomic.Uint64
	reloads     atomic.Uint64
	reloadErrs  atomic.Uint64
	lastReload  atomic.Int64 // Unix seconds of the last successful load
	reloadOK    atomic.Bool

	restartNeeded atomic.Pointer[[]string] // sections changed that only a restart applies
}

// Options are what New takes besides the config: what the command line
// gives.
type Options struct {
	// ConfigPath is the file cfg was read from, re-read on reload ("":
	// none; reloads then re-read the rules only).
	ConfigPath string
	// Format is the stdout alerts' format (json or text) when the config
	// names no notifier.
	Format string
	// Stdout receives those alerts; Stderr the rule errors.
	Stdout, Stderr io.Writer
	// Logger logs the daemon's events (nil: NewLogger(cfg.Log, Stderr)).
	Logger *slog.Logger
	// Version is reported by /api/status and the notifiers.
	Version string
}

// New builds the daemon's components in dependency order (rules, the
// alert tracker; enrichment, store, the engine and its queue; notifiers;
// listeners, Kafka and HTTP, their ports bound) without starting any. On error what was built is released.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = NewLogger(cfg.Log, opts.Stderr)
	}
	d := &Daemon{cfg: cfg, cfgPath: opts.ConfigPath, log: opts.Logger, opts: opts}
	if err := d.start(opts.Format, opts.Stdout, opts.Stderr); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// Run starts the components, serves until ctx ends or one fails, reloads
// on SIGHUP (and on file changes when reload.watch is set), then stops
// them in reverse within the shutdown deadline.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("flowguard started", "version", d.opts.Version, "rules", d.ruleCount.Load(), "listeners", len(d.listeners.list()), "http", d.cfg.HTTP.Listen)
	err := d.run(ctx)
	d.log.Info("flowguard stopped")
	return err
}

func (d *Daemon) start(format string, out, errw io.Writer) error {
	// Stamp the files before reading them: a change from now on is seen.
	d.loadedStamp = d.fileStamp()
	set, err := LoadRules(d.cfg.Rules, d.cfg.RulesOptions(), errw)
	if err != nil {
		return err
	}
	d.ruleCount.Store(int64(len(set.Rules)))
	d.noteThresholds(set)
	paths := d.cfg.Rules
	d.rulePaths.Store(&paths)
	if err := d.newTracker(); err != nil {
		return err
	}
	if d.enrich, err = newEnrichment(enrichmentConfigOf(d.cfg), enrichmentDeps{Logger: d.log}); err != nil {
		return err
	}
	if d.store, err = newStore(context.Background(), storeConfigOf(d.cfg), storeDeps{Logger: d.log}); err != nil {
		return err
	}
	if d.engine, err = newEnginePipeline(engineConfigOf(d.cfg), engineDeps{
		Rules:  set,
		Enrich: d.enrich.set,
		Store:  d.store.Store,
		Emit: func(a *alert.Alert) {
			if a.Event == alert.EventFiring {
				d.alerts.Add(1) // alerts, not their escalations and ends
			}
			d.tracker.Handle(a)
		},
		Progress: d.tracker.Progress,
	}); err != nil {
		return err
	}
	if d.notifiers, err = newNotifierSet(notifiersConfigOf(d.cfg, format, d.cfgPath), notifiersDeps{Logger: d.log, Stdout: out, Version: d.opts.Version, Firing: d.tracker.Firing}); err != nil {
		return err
	}
	if err := checkNotify(set, d.notify()); err != nil {
		return err
	}
	known := d.cfg.KnownExporters()
	d.knownExporters.Store(&known)
	d.reloadOK.Store(true)
	d.lastReload.Store(time.Now().Unix())

	if d.listeners, err = newListenerSet(d.cfg, d.log, flowSink{d}); err != nil {
		return err
	}
	if d.kafka, err = newKafka(d); err != nil {
		return ConfigError{fmt.Errorf("ingest.kafka: %w", err)}
	}
	d.api, err = newAPIServer(d.cfg.HTTP, d.log, d.mux)
	return err
}

// stop releases what start built, for a start that failed half way.
func (d *Daemon) stop() {
	if d.listeners != nil {
		d.listeners.close()
	}
	if d.kafka != nil {
		d.kafka.Close()
	}
	if d.api != nil {
		d.api.close()
	}
	if d.notifiers != nil {
		ctx, cancel := context.WithTimeout(context.Background(), abortCloseTimeout)
		d.notifiers.Stop(ctx)
		cancel()
	}
	if d.store != nil {
		d.store.Stop(context.Background())
	}
}

func (d *Daemon) run(ctx context.Context) error {
	d.started = time.Now()
	errc := make(chan error, 1)
	failed := func(err error) {
		select {
		case errc <- err:
		default: // one is enough to stop
		}
	}
	var group lifecycle.Group
	if err := group.Start(ctx, d.components(failed)...); err != nil {
		return err
	}
	d.health.ready.Store(true) // listeners bound, rules loaded

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if iv := d.cfg.Reload.WatchInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	seen := d.loadedStamp
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			d.log.Error("stopping", "err", err)
			break loop
		case <-hup:
			seen = d.fileStamp() // stamped before reading, so a change during the reload is seen next time
			d.reload()
		case <-tick:
			if now := d.fileStamp(); now != seen {
				d.log.Info("config or rule files changed: reloading")
				seen = now
				d.reload()
			}
		}
	}

	// Stop in reverse (see components); the notifiers deliver what is
	// queued until the shutdown deadline, after which what is left stays
	// in their spools (or is counted as dropped).
	sctx, cancel := context.WithTimeout(context.Background(), d.cfg.Shutdown.Deadline())
	defer cancel()
	d.health.ready.Store(false)
	if serr := group.Stop(sctx); serr != nil {
		d.log.Warn("stopping", "err", serr)
	}
	return err
}

// notify returns the dispatcher in service (swapped on reload).
func (d *Daemon) notify() *notifiers.Dispatcher { return d.notifiers.current() }

// components returns the running parts in the order they start, each
// after those it depends on: HTTP (first, so that /metrics and /readyz
// answer through start-up and the whole shutdown), notifiers, enrichment
// reloads, store, learned state (learned.go: its last save after the
// engine has drained, before the store closes), engine (drains its queue
// when stopped, after the listeners), listeners, the Kafka input. They
// stop in reverse.
func (d *Daemon) components(failed func(error)) []lifecycle.Component {
	d.listeners.failed = failed
	var cs []lifecycle.Component
	if d.api != nil {
		d.api.failed = failed
		for _, s := range d.streams {
			d.api.web.Streams(s.path)
			d.api.onShutdown = append(d.api.onShutdown, s.close)
		}
		cs = append(cs, d.api)
	}
	d.enrich.failed, d.engine.failed = failed, failed
	cs = append(cs,
		d.notifiers,
		d.enrich,
		d.store,
		d.learnedComponent(failed),
		d.engine,
		d.listeners)
	if k := d.kafkaComponent(failed); k != nil {
		cs = append(cs, k)
	}
	return cs
}
