package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/ingest/collector"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
	"github.com/flowguard/flowguard/lifecycle"
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all" // registers every notifier type
	"github.com/flowguard/flowguard/notifiers/stdout"
	"github.com/flowguard/flowguard/rules"
	"github.com/flowguard/flowguard/web"
)

const runSynopsis = `flowguard run [-c flowguard.yaml] [--format json|text] [--check]

Runs the collector: listens for NetFlow/IPFIX/sFlow (by default NetFlow on
:2055, IPFIX on :4739, sFlow on :6343, every version accepted on each),
enriches flows, evaluates the rules (by default the bundled examples) on
windows in memory, sends alerts to the configured notifiers (by default
stdout) and serves /metrics, /healthz, /readyz and /api (by default on 127.0.0.1:9310).
SIGHUP reloads the config (sections only a restart applies are named in
/api/status) and enrichment data, and reopens output files;
SIGINT or SIGTERM stop it cleanly.`

func cmdRun(args []string, out, errw io.Writer) error {
	fs := newFlagSet("run", runSynopsis, out, errw)
	cfgPath := fs.String("c", "", "config file (see examples/flowguard.yaml)")
	format := fs.String("format", "json", "alerts on stdout when no notifier is configured: json or text")
	check := fs.Bool("check", false, "validate the config, rules, databases and notifiers, then exit")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("run: unexpected argument %q", pos[0])
	}
	if *check {
		return checkConfig(*cfgPath, out, errw)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, errw)
	d := &daemon{cfg: cfg, cfgPath: *cfgPath, log: log}
	if err := d.start(*format, out, errw); err != nil {
		d.stop()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("flowguard started", "version", version, "rules", d.ruleCount.Load(), "listeners", len(d.listeners), "http", cfg.HTTP.Listen)
	err = d.run(ctx)
	log.Info("flowguard stopped")
	return err
}

// daemon holds the running components. start builds them in dependency
// order (rules, enrichment, notifiers, engine, listeners, HTTP); stop
// releases them in reverse.
type daemon struct {
	cfg     *config.Config
	cfgPath string
	log     *slog.Logger

	enrich     *enrich.Set
	store      window.Store
	closeStore func()
	notifyPtr  atomic.Pointer[notifiers.Dispatcher]
	format     string
	out        io.Writer
	lmu        sync.Mutex // guards listeners against reloads
	lctx       context.Context
	lerr       chan error
	engine     *engine.Engine
	pipe       *engine.Pipeline
	listeners  []*listener
	web        *web.Server
	httpLn     net.Listener
	http       *http.Server
	started    time.Time

	recent  *recentAlerts
	rates   rateMeter
	health  health
	lastErr atomic.Pointer[string]

	// Ingest budgets: the template memory all listeners share, and the
	// exporters /metrics always names.
	templateBudget *netflow.TemplateBudget
	knownExporters map[netip.Addr]bool

	rulePaths   atomic.Pointer[[]string] // as loaded; read by the API
	loadedStamp string                   // the files as they were when start read them
	ruleCount   atomic.Int64
	alerts      atomic.Uint64
	reloads     atomic.Uint64
	reloadErrs  atomic.Uint64
	lastReload  atomic.Int64 // Unix seconds of the last successful load
	reloadOK    atomic.Bool

	restartNeeded atomic.Pointer[[]string] // sections changed that only a restart applies

	// Dispatchers replaced by reloads deliver what they hold on goroutines
	// of their own; shutdown waits for them until its deadline, then
	// cancels them (what is left goes to their spools).
	drains      sync.WaitGroup
	drainCtx    context.Context
	drainCancel context.CancelFunc
}

type listener struct {
	*collector.Listener
	cfg  collector.Config
	decs []namedDecoder // one per registered protocol
	// The built-in protocols' decoders, for their ingest metrics.
	netflow *netflow.Decoder
	sflow   *sflow.Decoder
	cancel  context.CancelFunc
	done    chan struct{}
}

// notify returns the dispatcher in service (swapped on reload).
func (d *daemon) notify() *notifiers.Dispatcher { return d.notifyPtr.Load() }

// buildNotify builds the dispatcher a notifiers section describes, or one
// that writes to stdout when it names none.
func (d *daemon) buildNotify(c notifiers.Config) (*notifiers.Dispatcher, error) {
	deps := notifiers.Deps{Logger: d.log, Stdout: d.out, Version: version}
	if len(c.Notifiers) > 0 {
		n, err := notifiers.Build(c, deps)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", d.cfgPath, err)}
		}
		return n, nil
	}
	so, err := stdout.New("stdout", stdout.Config{Format: d.format}, d.out)
	if err != nil {
		return nil, usagef("--format: %v", err)
	}
	return notifiers.New([]notifiers.Target{{Notifier: so, Type: "stdout"}}, nil, deps)
}

// newListener binds one listener with decoders of its own.
func (d *daemon) newListener(lc collector.Config) (*listener, error) {
	name := lc.Name
	if name == "" {
		name = lc.Address
	}
	l := &listener{cfg: lc, decs: protocolDecoders(decoderSettings{cfg: d.cfg, budget: d.templateBudget,
		onSkew: logSkew(d.log, name, d.cfg.ExporterClock.Corrects())})}
	for _, n := range l.decs {
		switch dec := n.udpDecoder.(type) {
		case netflowDecoder:
			l.netflow = dec.Decoder
		case sflowDecoder:
			l.sflow = dec.Decoder
		}
	}
	cl, err := collector.Listen(lc, collectorDecoders(l.decs))
	if err != nil {
		return nil, err
	}
	l.Listener = cl
	return l, nil
}

// startListener runs a bound listener on its own goroutine. The caller
// holds d.lmu.
func (d *daemon) startListener(l *listener) {
	ctx, cancel := context.WithCancel(d.lctx)
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		d.log.Info("listening", "name", l.Name(), "address", l.Addr().String())
		if err := l.Run(ctx, d.pipe.Handle); err != nil && !errors.Is(err, context.Canceled) {
			d.lerr <- fmt.Errorf("listener %s: %w", l.Name(), err)
		}
	}()
}

// listenerList returns the listeners in service.
func (d *daemon) listenerList() []*listener {
	d.lmu.Lock()
	defer d.lmu.Unlock()
	return append([]*listener(nil), d.listeners...)
}

func (d *daemon) start(format string, out, errw io.Writer) error {
	// Stamp the files before reading them: a change from now on is seen.
	d.loadedStamp = d.fileStamp()
	set, err := loadRulesWith(d.cfg.Rules, d.cfg.RulesOptions(), errw)
	if err != nil {
		return err
	}
	d.ruleCount.Store(int64(len(set.Rules)))
	paths := d.cfg.Rules
	d.rulePaths.Store(&paths)
	d.enrich, err = enrich.Build(d.cfg.Enrich, d.log)
	if err != nil {
		return usageError{err}
	}
	d.format, d.out = format, out
	n, err := d.buildNotify(d.cfg.Notifiers)
	if err != nil {
		return err
	}
	d.notifyPtr.Store(n)
	if err := d.checkNotify(set, n); err != nil {
		return err
	}
	d.recent = newRecentAlerts(1000)
	d.store, d.closeStore, err = openStore(context.Background(), d.cfg, d.log)
	if err != nil {
		return err
	}
	d.engine, err = engine.New(engine.Config{
		Store:    d.store,
		MaxKeys:  d.cfg.Engine.MaxKeys,
		Enricher: d.enrich,
		// Event time (README "Time").
		AllowedLateness: time.Duration(d.cfg.Engine.AllowedLateness),
		FutureTolerance: time.Duration(d.cfg.Engine.FutureTolerance),
		Emit: func(a *alert.Alert) {
			d.alerts.Add(1)
			d.recent.add(a)
			d.notify().Send(a)
		},
	}, set)
	if err != nil {
		return err
	}
	d.pipe = engine.NewPipeline(d.engine, max(1, d.cfg.Engine.QueueLimit()/engine.PipelineChunk))
	if rc := d.cfg.Store.Redis; rc != nil {
		d.pipe.ExchangeEvery(rc.FlushInterval) // zero: the default, which is the store's
	}
	d.templateBudget = netflow.NewTemplateBudget(d.cfg.Ingest.TemplateBytesTotal)
	d.knownExporters = d.cfg.KnownExporters()
	d.reloadOK.Store(true)
	d.lastReload.Store(time.Now().Unix())

	for _, lc := range d.cfg.Listen {
		l, err := d.newListener(lc)
		if err != nil {
			return err
		}
		d.listeners = append(d.listeners, l)
	}
	if d.cfg.HTTP.Listen != "off" {
		srv, err := web.New(d.cfg.HTTP, d.log)
		if err != nil {
			return usageError{err}
		}
		ln, err := srv.Listen()
		if err != nil {
			return err
		}
		d.web, d.httpLn = srv, ln
		if warn := srv.Insecure(); warn != "" {
			d.log.Warn(warn)
		}
	}
	return nil
}

// checkNotify rejects rules that name notifiers the dispatcher lacks.
func (d *daemon) checkNotify(set *rules.Set, disp *notifiers.Dispatcher) error {
	var errs []error
	for _, r := range set.Rules {
		for _, n := range r.Notify {
			if !disp.Has(n) {
				errs = append(errs, fmt.Errorf("%s:%d: rule %q: notify: no notifier named %q", r.File, r.Line, r.ID, n))
			}
		}
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// stop releases what start built, for a start that failed half way.
func (d *daemon) stop() {
	for _, l := range d.listeners {
		l.Close()
	}
	if d.httpLn != nil {
		d.httpLn.Close()
	}
	if n := d.notify(); n != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.Close(ctx)
		cancel()
	}
	if d.closeStore != nil {
		d.closeStore()
	}
}

func (d *daemon) run(ctx context.Context) error {
	d.started = time.Now()
	d.drainCtx, d.drainCancel = context.WithCancel(context.Background())
	defer d.drainCancel()
	errc := make(chan error, len(d.listeners)+4)
	failed := func(err error) {
		select {
		case errc <- err:
		default: // one is enough to stop
		}
	}
	var group lifecycle.Group
	if err := group.Start(ctx, d.components(errc, failed)...); err != nil {
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

// components returns the running parts in the order they start, each
// after those it depends on: HTTP (first, so that /metrics and /readyz
// answer through start-up and the whole shutdown), notifiers, enrichment
// reloads, store, engine (drains its queue when stopped, after the
// listeners), listeners. They stop in reverse.
func (d *daemon) components(errc chan error, failed func(error)) []lifecycle.Component {
	notifiers := lifecycle.Funcs{N: "notifiers", OnStop: func(ctx context.Context) error {
		err := d.notify().Close(ctx)
		// Dispatchers replaced by reloads: until the same deadline.
		stop := context.AfterFunc(ctx, d.drainCancel)
		d.drains.Wait()
		stop()
		return err
	}}
	enrichment := lifecycle.Run("enrich", d.enrich.Run, failed)
	store := lifecycle.Funcs{N: "store", OnStop: func(context.Context) error { d.closeStore(); return nil }}
	pipeline := lifecycle.Run("engine", func(ctx context.Context) error { d.pipe.Run(ctx); return nil }, failed)
	var lstop context.CancelFunc
	listeners := lifecycle.Funcs{N: "listeners",
		OnStart: func(context.Context) error {
			d.lctx, lstop = context.WithCancel(context.Background())
			d.lerr = errc
			// Under lmu: /healthz (served already) reads each listener's
			// done channel, which startListener sets.
			d.lmu.Lock()
			defer d.lmu.Unlock()
			for _, l := range d.listeners {
				d.startListener(l)
			}
			return nil
		},
		OnStop: func(context.Context) error {
			lstop()
			for _, l := range d.listenerList() {
				<-l.done
			}
			return nil
		}}
	var cs []lifecycle.Component
	if d.httpLn != nil {
		served := make(chan struct{})
		cs = append(cs, lifecycle.Funcs{N: "http",
			OnStart: func(context.Context) error {
				d.http = d.web.HTTPServer(d.mux())
				go func() {
					defer close(served)
					if err := d.http.Serve(d.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
						failed(fmt.Errorf("http: %w", err))
					}
				}()
				return nil
			},
			OnStop: func(ctx context.Context) error {
				sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if d.http.Shutdown(sctx) != nil {
					d.http.Close() // the shutdown deadline has passed: requests in flight are cut
				}
				<-served
				return nil
			}})
	}
	return append(cs, notifiers, enrichment, store, pipeline, listeners)
}

// fileStamp summarises the config and rule files' names, sizes and
// modification times: a change of any shows as a different string.
func (d *daemon) fileStamp() string {
	var b strings.Builder
	stamp := func(p string) {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	if d.cfgPath != "" {
		stamp(d.cfgPath)
	}
	for _, p := range d.cfg.Rules {
		stamp(p)
		if m, err := filepath.Glob(filepath.Join(p, "*.y*ml")); err == nil {
			for _, f := range m {
				stamp(f)
			}
		}
	}
	return b.String()
}

// restartListeners brings the listeners to a new configuration: unchanged
// ones keep running (and their templates), changed ones are stopped and
// bound again, removed ones stopped, new ones started. With fresh (the
// sampling or exporter clock settings changed) every listener is rebound
// with decoders built from to. A listener that cannot bind is logged and
// left out.
func (d *daemon) restartListeners(to *config.Config, fresh bool) {
	d.lmu.Lock()
	defer d.lmu.Unlock()
	want := to.Listen
	d.cfg.Sampling, d.cfg.ExporterClock = to.Sampling, to.ExporterClock // what newListener builds decoders from
	old := map[string]*listener{}
	for _, l := range d.listeners {
		old[l.cfg.Name] = l
	}
	var keep []*listener
	for _, lc := range want {
		if l, ok := old[lc.Name]; ok && !fresh && reflect.DeepEqual(l.cfg, lc) {
			keep = append(keep, l)
			delete(old, lc.Name)
		}
	}
	for _, l := range old { // changed or removed: stop before rebinding
		l.cancel()
		<-l.done
		for _, n := range l.decs {
			n.release() // its templates no longer count in the shared budget
		}
		d.log.Info("listener stopped by reload", "name", l.cfg.Name)
	}
	next := keep
	for _, lc := range want {
		if slices.ContainsFunc(keep, func(l *listener) bool { return l.cfg.Name == lc.Name }) {
			continue
		}
		l, err := d.newListener(lc)
		if err != nil {
			d.reloadErrs.Add(1)
			d.log.Error("reload: listener not started", "name", lc.Name, "err", err)
			continue
		}
		d.startListener(l)
		next = append(next, l)
	}
	d.listeners = next
	d.cfg.Listen = want
}

func (d *daemon) reloadErr() string {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// topGroups asks the engine, between batches, for a rule's highest groups.
func (d *daemon) topGroups(id string) []engine.GroupValue {
	var out []engine.GroupValue
	d.pipe.Do(func(e *engine.Engine) { out = e.TopGroups(id) })
	if out == nil {
		out = []engine.GroupValue{}
	}
	return out
}

// reload re-reads the config file as it is now and applies it (rules,
// notifiers, listeners and their decoders, shutdown), names the sections
// only a restart applies (see restartSections), re-reads the enrichment
// data once the config is accepted, and reopens output files. A config or
// rule set with errors is refused and the running one kept.
func (d *daemon) reload() {
	defer d.reloads.Add(1) // counted once done, so readers see its outcome
	d.notify().Reopen()
	paths, opts := d.cfg.Rules, d.cfg.RulesOptions()
	var newCfg *config.Config
	if d.cfgPath != "" {
		if c, err := config.Load(d.cfgPath); err == nil {
			paths, opts, newCfg = c.Rules, c.RulesOptions(), c
		} else {
			d.reloadErrs.Add(1)
			d.reloadOK.Store(false)
			msg := err.Error()
			d.lastErr.Store(&msg)
			d.log.Error("reload refused: the config has errors; everything keeps running as it was", "err", err)
			return
		}
	}
	var set *rules.Set
	var err error
	if len(paths) == 0 {
		set, err = loadRulesWith(nil, opts, io.Discard)
	} else {
		set, err = opts.Load(paths...)
	}
	disp := d.notify()
	var newDisp *notifiers.Dispatcher
	if err == nil && newCfg != nil && !reflect.DeepEqual(newCfg.Notifiers, d.cfg.Notifiers) {
		newDisp, err = d.buildNotify(newCfg.Notifiers)
		if err == nil {
			disp = newDisp
		}
	}
	if err == nil {
		err = d.checkNotify(set, disp)
	}
	if err == nil {
		d.pipe.Do(func(e *engine.Engine) { err = e.Reload(set) })
	}
	if err != nil && newDisp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		newDisp.Close(ctx)
		cancel()
	}
	if err == nil && newDisp != nil {
		// The old dispatcher delivers what it holds (or spools it) while
		// new alerts go to the new one.
		old := d.notifyPtr.Swap(newDisp)
		d.cfg.Notifiers = newCfg.Notifiers
		d.drains.Go(func() {
			ctx, cancel := context.WithTimeout(d.drainCtx, 30*time.Second)
			defer cancel()
			if err := old.Close(ctx); err != nil {
				d.log.Warn("notifiers replaced by a reload", "err", err)
			}
		})
		d.log.Info("notifiers reloaded")
	}
	if err == nil && newCfg != nil {
		if fresh := decodersChanged(newCfg, d.cfg); fresh || !reflect.DeepEqual(newCfg.Listen, d.cfg.Listen) {
			d.restartListeners(newCfg, fresh)
		}
		d.cfg.Shutdown = newCfg.Shutdown
		d.noteRestartNeeded(newCfg)
	}
	if err != nil {
		d.reloadErrs.Add(1)
		d.reloadOK.Store(false)
		msg := err.Error()
		d.lastErr.Store(&msg)
		d.log.Error("reload refused: the previous rules keep running", "err", err)
		return
	}
	d.lastErr.Store(nil)
	d.cfg.Rules = paths
	d.rulePaths.Store(&paths)
	d.reloadOK.Store(true)
	d.lastReload.Store(time.Now().Unix())
	d.ruleCount.Store(int64(len(set.Rules)))
	if err := d.enrich.Reload(); err != nil {
		d.log.Error("reload: enrichment data", "err", err)
	}
	d.log.Info("reloaded", "rules", len(set.Rules))
}

func (d *daemon) mux() *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics(d), timeMetrics{d}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if d.web != nil {
		reg.MustRegister(d.web)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", d.apiHealth)
	mux.HandleFunc("/readyz", d.apiReady)
	mux.HandleFunc("GET /api/status", d.apiStatus)
	mux.HandleFunc("GET /api/alerts", d.apiAlerts)
	mux.HandleFunc("GET /api/rules", d.apiRules)
	mux.HandleFunc("GET /api/exporters", d.apiExporters)
	return mux
}

// checkConfig validates everything run would load, without starting.
func checkConfig(path string, out, errw io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	set, err := loadRulesWith(cfg.Rules, cfg.RulesOptions(), errw)
	if err != nil {
		return err
	}
	if _, err := enrich.Build(cfg.Enrich, slog.New(slog.NewTextHandler(errw, nil))); err != nil {
		return usageError{err}
	}
	if cfg.HTTP.Listen != "off" {
		if _, err := web.New(cfg.HTTP, nil); err != nil { // reads the TLS files
			return usageError{fmt.Errorf("%s: %w", path, err)}
		}
	}
	if len(cfg.Notifiers.Notifiers) > 0 {
		n, err := notifiers.Build(cfg.Notifiers, notifiers.Deps{Stdout: io.Discard, Version: version})
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", path, err)}
		}
		d := &daemon{}
		err = d.checkNotify(set, n)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n.Close(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "config ok: %s, %s, %s\n", plural(len(set.Rules), "rule"), plural(len(cfg.Listen), "listener"), plural(max(1, len(cfg.Notifiers.Notifiers)), "notifier"))
	return nil
}
