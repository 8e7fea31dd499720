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
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all" // registers every notifier type
	"github.com/flowguard/flowguard/notifiers/stdout"
	"github.com/flowguard/flowguard/rules"
)

const runSynopsis = `flowguard run [-c flowguard.yaml] [--format json|text] [--check]

Runs the collector: listens for NetFlow/IPFIX/sFlow (by default NetFlow on
:2055, IPFIX on :4739, sFlow on :6343, every version accepted on each),
enriches flows, evaluates the rules (by default the bundled examples) on
windows in memory, sends alerts to the configured notifiers (by default
stdout) and serves /metrics and /healthz (by default on :9310).
SIGHUP reloads the rules and enrichment data and reopens output files;
SIGINT or SIGTERM stop it cleanly.`

func cmdRun(args []string, out, errw io.Writer) error {
	fs := newFlagSet("run", runSynopsis, errw)
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
	notify     *notifiers.Dispatcher
	engine     *engine.Engine
	pipe       *engine.Pipeline
	listeners  []*listener
	httpLn     net.Listener
	http       *http.Server
	started    time.Time

	recent  *recentAlerts
	rates   rateMeter
	lastErr atomic.Pointer[string]

	ruleCount  atomic.Int64
	alerts     atomic.Uint64
	reloads    atomic.Uint64
	reloadErrs atomic.Uint64
	lastReload atomic.Int64 // Unix seconds of the last successful load
	reloadOK   atomic.Bool
}

type listener struct {
	*collector.Listener
	netflow *netflow.Decoder
	sflow   *sflow.Decoder
}

func (d *daemon) start(format string, out, errw io.Writer) error {
	set, err := loadRules(d.cfg.Rules, errw)
	if err != nil {
		return err
	}
	d.ruleCount.Store(int64(len(set.Rules)))
	d.enrich, err = enrich.Build(d.cfg.Enrich, d.log)
	if err != nil {
		return usageError{err}
	}
	deps := notifiers.Deps{Logger: d.log, Stdout: out, Version: version}
	if len(d.cfg.Notifiers.Notifiers) > 0 {
		d.notify, err = notifiers.Build(d.cfg.Notifiers, deps)
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", d.cfgPath, err)}
		}
	} else {
		so, err := stdout.New("stdout", stdout.Config{Format: format}, out)
		if err != nil {
			return usagef("--format: %v", err)
		}
		d.notify, err = notifiers.New([]notifiers.Target{{Notifier: so, Type: "stdout"}}, nil, deps)
		if err != nil {
			return err
		}
	}
	if err := d.checkNotify(set); err != nil {
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
		Emit: func(a *alert.Alert) {
			d.alerts.Add(1)
			d.recent.add(a)
			d.notify.Send(a)
		},
	}, set)
	if err != nil {
		return err
	}
	d.pipe = engine.NewPipeline(d.engine, 1024)
	d.reloadOK.Store(true)
	d.lastReload.Store(time.Now().Unix())

	override := map[netip.Addr]uint32{}
	for a, r := range d.cfg.Sampling.Exporters {
		override[netip.MustParseAddr(a)] = r // validated with the config
	}
	for _, lc := range d.cfg.Listen {
		l := &listener{
			netflow: netflow.NewDecoder(netflow.Config{SamplingOverride: override, DefaultSampling: d.cfg.Sampling.Default}),
			sflow:   sflow.NewDecoder(sflow.Config{SamplingOverride: override, DefaultSampling: d.cfg.Sampling.Default}),
		}
		cl, err := collector.Listen(lc, collector.Decoders{NetFlow: l.netflow, SFlow: l.sflow})
		if err != nil {
			return err
		}
		l.Listener = cl
		d.listeners = append(d.listeners, l)
	}
	if d.cfg.HTTP.Listen != "off" {
		ln, err := net.Listen("tcp", d.cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		d.httpLn = ln
	}
	return nil
}

// checkNotify rejects rules that name notifiers the config lacks.
func (d *daemon) checkNotify(set *rules.Set) error {
	var errs []error
	for _, r := range set.Rules {
		for _, n := range r.Notify {
			if !d.notify.Has(n) {
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
	if d.notify != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.notify.Close(ctx)
		cancel()
	}
	if d.closeStore != nil {
		d.closeStore()
	}
}

func (d *daemon) run(ctx context.Context) error {
	d.started = time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, len(d.listeners)+2)

	// Engine: drains the queue until the listeners have stopped.
	pctx, pstop := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); d.pipe.Run(pctx) }()

	// Enrichment data reloads.
	ectx, estop := context.WithCancel(context.Background())
	var ewg sync.WaitGroup
	ewg.Add(1)
	go func() { defer ewg.Done(); d.enrich.Run(ectx) }()

	// Listeners.
	lctx, lstop := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	for _, l := range d.listeners {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			d.log.Info("listening", "name", l.Name(), "address", l.Addr().String())
			if err := l.Run(lctx, d.pipe.Handle); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("listener %s: %w", l.Name(), err)
			}
		}()
	}

	// HTTP.
	if d.httpLn != nil {
		d.http = &http.Server{Handler: d.mux(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := d.http.Serve(d.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if iv := d.cfg.Reload.WatchInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	seen := d.fileStamp()
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
			d.reload()
			seen = d.fileStamp()
		case <-tick:
			if now := d.fileStamp(); now != seen {
				d.log.Info("config or rule files changed: reloading")
				seen = now
				d.reload()
			}
		}
	}

	// Stop in reverse: HTTP, listeners, engine (drains its queue), then
	// notifiers deliver what is queued, within a deadline.
	if d.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d.http.Shutdown(sctx)
		cancel()
	}
	lstop()
	lwg.Wait()
	pstop()
	wg.Wait()
	d.closeStore()
	estop()
	ewg.Wait()
	nctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.notify.Close(nctx); err != nil {
		d.log.Warn("notifiers at shutdown", "err", err)
	}
	return err
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

// reload re-reads the rules (from the config file as it is now) and the
// enrichment data, and reopens output files. A rule set with errors is
// refused and the running one kept.
func (d *daemon) reload() {
	d.reloads.Add(1)
	d.notify.Reopen()
	if err := d.enrich.Reload(); err != nil {
		d.log.Error("reload: enrichment data", "err", err)
	}
	paths := d.cfg.Rules
	if d.cfgPath != "" {
		if c, err := config.Load(d.cfgPath); err == nil {
			paths = c.Rules
		} else {
			d.log.Error("reload: config has errors, using the rule paths already loaded", "err", err)
		}
	}
	var set *rules.Set
	var err error
	if len(paths) == 0 {
		set, err = loadRules(nil, io.Discard)
	} else {
		set, err = rules.Load(paths...)
	}
	if err == nil {
		err = d.checkNotify(set)
	}
	if err == nil {
		d.pipe.Do(func(e *engine.Engine) { err = e.Reload(set) })
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
	d.reloadOK.Store(true)
	d.lastReload.Store(time.Now().Unix())
	d.ruleCount.Store(int64(len(set.Rules)))
	d.log.Info("reloaded", "rules", len(set.Rules))
}

func (d *daemon) mux() *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics(d), prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
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
	set, err := loadRules(cfg.Rules, errw)
	if err != nil {
		return err
	}
	if _, err := enrich.Build(cfg.Enrich, slog.New(slog.NewTextHandler(errw, nil))); err != nil {
		return usageError{err}
	}
	if len(cfg.Notifiers.Notifiers) > 0 {
		n, err := notifiers.Build(cfg.Notifiers, notifiers.Deps{Stdout: io.Discard, Version: version})
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", path, err)}
		}
		d := &daemon{notify: n}
		err = d.checkNotify(set)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n.Close(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "config ok: %d rules, %d listeners, %d notifiers\n", len(set.Rules), len(cfg.Listen), max(1, len(cfg.Notifiers.Notifiers)))
	return nil
}
