// Package replay runs flow files and captures through the rules on the
// flows' own time, as `flowguard replay` does: the same evaluator and
// export decoders as the daemon (daemon.NewEvaluator,
// daemon.NewExportDecoder), fed from files (ingest/file) instead of
// listeners, alerts in time order on stdout and a summary on stderr.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/daemon"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/tuning"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/file"
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all" // registers every notifier type
	"github.com/flowguard/flowguard/notifiers/stdout"
	"github.com/flowguard/flowguard/rules"
)

// ErrInterrupted ends a replay stopped (ctx cancelled) before its end;
// the alerts up to there were written.
var ErrInterrupted = errors.New("interrupted")

// Options are a replay's settings besides the config and the rules.
type Options struct {
	Files  []string
	Format string  // alerts on out: json or text
	Quiet  bool    // no summary nor progress
	Speed  float64 // N times the flows' own pace; 0: as fast as possible
	Stats  string  // tuning summary on errw: text, json or none
	// Notify also sends the alerts to the config's notifiers.
	Notify bool
	// ExportPorts: captured UDP datagrams to these ports (comma-separated)
	// are decoded as flow export; auto: any that decodes; none: metered.
	ExportPorts string
	Version     string
	// Truth, when set, is what the input is known to hold: the report
	// (Stats text or json) ends with recall and false alarms per rule.
	Truth *tuning.Truth
	// Learn names a learned-state file (engine.LearnedState): loaded
	// before the replay when it exists, written with what the rules that
	// learn learned after it, so that a capture trains them.
	Learn string
}

// Run replays o.Files through the rules: alerts to out, the summary to
// errw. Cancelling ctx stops it at the next batch with ErrInterrupted.
func Run(ctx context.Context, cfg *config.Config, set *rules.Set, o Options, out, errw io.Writer) error {
	if o.Quiet {
		o.Stats = "none"
	}
	sink, err := stdout.New("stdout", stdout.Config{Format: o.Format}, out)
	if err != nil {
		return daemon.ConfigError{Err: fmt.Errorf("--format: %v", err)}
	}
	defer sink.Close()
	log := slog.New(slog.NewTextHandler(errw, nil))
	var disp *notifiers.Dispatcher
	if o.Notify {
		if len(cfg.Notifiers.Notifiers) == 0 {
			return daemon.ConfigError{Err: errors.New("--notify: the config (-c) names no notifiers")}
		}
		disp, err = notifiers.Build(cfg.Notifiers, notifiers.Deps{Logger: log, Stdout: io.Discard, Version: o.Version})
		if err != nil {
			return daemon.ConfigError{Err: err}
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), daemon.NotifierDrainTimeout)
			defer cancel()
			if err := disp.Close(dctx); err != nil {
				fmt.Fprintln(errw, "notifiers:", err)
			}
		}()
	}
	var sinkErr error
	order := &alertOrder{warn: errw, write: func(a *alert.Alert) {
		if err := sink.Notify(ctx, a); err != nil && sinkErr == nil {
			sinkErr = err
		}
	}}
	if o.Speed == 0 {
		order.max = maxHeldAlerts
	}
	defer order.flush()
	col := tuning.New(set, tuning.Config{})
	if o.Truth != nil {
		col.SetTruth(o.Truth)
	}
	deps := daemon.EvaluatorDeps{Rules: set, Logger: log, Emit: func(a *alert.Alert) {
		col.OnAlert(a)
		if disp != nil {
			disp.Send(a)
		}
		order.add(a)
	}}
	if o.Stats != "none" {
		deps.Observe = col.Observe
	}
	ev, err := daemon.NewEvaluator(ctx, cfg, deps)
	if err != nil {
		return err
	}
	defer ev.Close()
	eng := ev.Engine
	if o.Learn != "" {
		st, err := engine.ReadLearnedFile(o.Learn)
		if err != nil {
			return fmt.Errorf("--learn: %w", err)
		}
		if n := eng.LoadLearned(st); n > 0 && o.Stats == "text" {
			fmt.Fprintf(errw, "%s: learned state of %d rules loaded\n", o.Learn, n)
		}
	}
	var ttotals tuning.Totals
	pace := &pacer{speed: o.Speed, ctx: ctx, next: func(b []flow.Flow) {
		ttotals.Add(b)
		eng.Process(b)
	}}
	var lastExchange func(context.Context)
	pace.idle, pace.idleEvery, lastExchange = daemon.SharedExchange(ev.Store, eng.Exchange)
	var skewLog *slog.Logger
	if o.Stats == "text" {
		skewLog = log
	}
	export, err := daemon.NewExportDecoder(o.ExportPorts, cfg, pace.handle, skewLog)
	if err != nil {
		return daemon.ConfigError{Err: fmt.Errorf("--export-ports: %v", err)}
	}
	start := time.Now()
	var totals fileTotals
	var interrupted error // Ctrl-C: what was read is evaluated and reported
	for _, path := range o.Files {
		src, kind, err := file.Open(path, file.Options{Meter: cfg.Meter.MeterConfig(), Datagram: export.Datagram})
		if err != nil {
			return err
		}
		stopProgress := progress(errw, path, src, o.Quiet)
		err = src.Run(ctx, pace.handle)
		stopProgress()
		st := src.Stats()
		ex := export.Counts()
		totals.add(st.Packets, st.Flows+ex.Flows, st.Malformed+ex.Malformed)
		if o.Stats == "text" {
			fmt.Fprintf(errw, "%s: %s, %d records, %d flows, %d malformed", path, kind, st.Packets, st.Flows, st.Malformed)
			if ex.Datagrams > 0 {
				fmt.Fprintf(errw, "; flow export: %d datagrams, %d flows, %d malformed", ex.Datagrams, ex.Flows, ex.Malformed)
			}
			fmt.Fprintln(errw)
		}
		export.Reset()
		if ctx.Err() != nil {
			interrupted = fmt.Errorf("%s: %w", path, ErrInterrupted)
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if lastExchange != nil && interrupted == nil {
		lastExchange(ctx)
	}
	eng.Flush()
	order.flush()
	if sinkErr != nil {
		return sinkErr
	}
	if o.Learn != "" {
		if err := engine.WriteLearnedFile(o.Learn, eng.SaveLearned()); err != nil {
			return fmt.Errorf("--learn: %w", err)
		}
	}
	ttotals.DecodeErrors = totals.malformed
	ts := eng.Stats().Time
	ttotals.Late, ttotals.Future = ts.Late, ts.Future
	switch o.Stats {
	case "text":
		printSummary(errw, eng.Stats(), totals, time.Since(start))
		fmt.Fprintln(errw)
		rep := col.Report(ttotals)
		rep.AddLearned(eng)
		rep.WriteText(errw)
	case "json":
		rep := col.Report(ttotals)
		rep.AddLearned(eng)
		rep.WriteJSON(errw)
	}
	return interrupted
}

// progress shows, on a terminal, how far a long file has got: after two
// seconds, twice a second, records read (and the share of the file where
// the source knows it). The returned func stops it.
func progress(w io.Writer, path string, src file.Source, quiet bool) func() {
	f, ok := w.(*os.File)
	if quiet || !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-t.C:
				if time.Since(start) < 2*time.Second {
					continue
				}
				st := src.Stats()
				line := fmt.Sprintf("%s: %d records, %.0f/s", path, st.Packets, float64(st.Packets)/time.Since(start).Seconds())
				if p, ok := src.(interface{ Progress() (int64, int64) }); ok {
					if read, size := p.Progress(); size > 0 {
						line += fmt.Sprintf(", %.0f%%", 100*float64(read)/float64(size))
					}
				}
				fmt.Fprintf(w, "\r\033[K%s", line)
				shown = true
			}
		}
	}()
	return func() { close(done); <-stopped }
}

type fileTotals struct{ records, flows, malformed uint64 }

func (t *fileTotals) add(r, f, m uint64) { t.records += r; t.flows += f; t.malformed += m }

func printSummary(w io.Writer, st engine.Stats, t fileTotals, took time.Duration) {
	fmt.Fprintf(w, "replayed %s (%s, %d malformed) in %s\n", count(st.Flows, "flow"), count(t.records, "record"), t.malformed, took.Round(time.Millisecond))
	rs := append([]engine.RuleStats(nil), st.Rules...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Alerts > rs[j].Alerts })
	printTime(w, st.Time)
	fmt.Fprintf(w, "%-28s %10s %8s %10s %8s %8s\n", "rule", "matched", "alerts", "suppressed", "keys", "evicted")
	for _, r := range rs {
		fmt.Fprintf(w, "%-28s %10d %8d %10d %8d %8d\n", r.ID, r.Matched, r.Alerts, r.Suppressed, r.Window.Keys, r.Window.Evicted)
	}
}

// maxSourceLines bounds the sources the summary names.
const maxSourceLines = 10

// printTime prints the engine's clock: the watermark, the late and future
// flows, and the sources that had any or whose clock was shifted.
func printTime(w io.Writer, ts engine.TimeStats) {
	fmt.Fprintf(w, "event time: watermark %s, %d late (allowed lateness %s), %d future (tolerance %s)\n",
		daemon.TimeText(ts.Watermark), ts.Late, ts.AllowedLateness, ts.Future, ts.FutureTolerance)
	n := 0
	for _, s := range ts.Sources {
		if s.Late == 0 && s.Future == 0 && s.Shift == 0 {
			continue
		}
		if n++; n > maxSourceLines {
			fmt.Fprintf(w, "  ... more sources: see /api/status\n")
			break
		}
		fmt.Fprintf(w, "  source %s: %d flows, %d late, %d future, clock %s, shifted %s\n",
			daemon.SourceName(s), s.Flows, s.Late, s.Future, daemon.TimeText(s.Clock), time.Duration(s.Shift))
	}
}

// count writes n nouns ("1 flow", "2 flows").
func count(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}
