package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/window"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/rules"
)

// What `flowguard replay` builds its pipeline from, shared with Run: the
// evaluator (enrichment, window store, engine) and the decoders of
// captured flow export, both from the same config.

// Evaluator evaluates flows: the enrichment, the window store and the
// engine over the rules, built by NewEvaluator alike for Run and replay.
type Evaluator struct {
	Enrich *enrich.Set
	Store  window.Store
	Engine *engine.Engine

	closeStore func()
}

// EvaluatorDeps are what NewEvaluator takes besides the config.
type EvaluatorDeps struct {
	Rules *rules.Set
	// Emit receives the alerts, on the goroutine that processes flows.
	Emit func(*alert.Alert)
	// Observe, when set, sees every value an aggregate rule computes
	// (replay's tuning report).
	Observe func(r *rules.Rule, group []byte, value float64, f *flow.Flow)
	// Progress, when set, hears of firing alerts on the engine's ticks
	// (the alert tracker's input).
	Progress func(engine.Progress)
	Logger   *slog.Logger
}

// NewEvaluator builds the enrichment, opens the window store and builds
// the engine the config describes, with the constructors of Run's
// components (enrichment.go, store.go, engine.go). Close releases them.
func NewEvaluator(ctx context.Context, cfg *config.Config, deps EvaluatorDeps) (*Evaluator, error) {
	enr, err := newEnrichment(enrichmentConfigOf(cfg), enrichmentDeps{Logger: deps.Logger})
	if err != nil {
		return nil, err
	}
	store, err := newStore(ctx, storeConfigOf(cfg), storeDeps{Logger: deps.Logger})
	if err != nil {
		return nil, err
	}
	eng, err := newEngine(engineConfigOf(cfg), engineDeps{
		Rules:    deps.Rules,
		Enrich:   enr.set,
		Store:    store.Store,
		Emit:     deps.Emit,
		Observe:  deps.Observe,
		Progress: deps.Progress,
	})
	if err != nil {
		store.close()
		return nil, err
	}
	return &Evaluator{Enrich: enr.set, Store: store.Store, Engine: eng, closeStore: store.close}, nil
}

// Close flushes a shared store's last deltas and releases the store.
func (e *Evaluator) Close() { e.closeStore() }

// ExportDecoder decodes NetFlow/IPFIX/sFlow datagrams found in a capture
// with the collector's decoders, configured as `run` configures them, and
// the capture's packet times as receive times: a pcap of export traffic
// replays as the flows the collector got from it.
type ExportDecoder struct {
	ports   map[uint16]bool // nil: auto
	off     bool
	decs    []namedDecoder // one per registered protocol
	process func([]flow.Flow)
	out     []flow.Flow

	datagrams, flows, malformed uint64
}

// NewExportDecoder returns the decoder of export datagrams in captures:
// spec is "auto" (any UDP datagram that decodes as a registered protocol),
// "none" or a comma-separated list of ports. cfg configures the decoders
// as Run's listeners (sampling, ingest budgets, exporter clocks); log,
// when not nil, hears of skewed exporter clocks.
func NewExportDecoder(spec string, cfg *config.Config, process func([]flow.Flow), log *slog.Logger) (*ExportDecoder, error) {
	s := decoderSettings{cfg: cfg, budget: netflow.NewTemplateBudget(cfg.Ingest.TemplateBytesTotal)}
	if log != nil {
		s.onSkew = logSkew(log, "replay", cfg.ExporterClock.Corrects())
	}
	return newExportDecoder(spec, process, s)
}

func newExportDecoder(spec string, process func([]flow.Flow), s decoderSettings) (*ExportDecoder, error) {
	d := &ExportDecoder{
		decs:    protocolDecoders(s),
		process: process,
	}
	switch spec {
	case "auto", "":
	case "none":
		d.off = true
	default:
		d.ports = map[uint16]bool{}
		for _, p := range strings.Split(spec, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("%q is not a port", p)
			}
			d.ports[uint16(n)] = true
		}
	}
	return d, nil
}

// Datagram is the pcap reader's hook: it reports whether it consumed the
// datagram as flow export.
func (d *ExportDecoder) Datagram(ts time.Time, src, dst netip.AddrPort, p []byte) bool {
	if d.off || (d.ports != nil && !d.ports[dst.Port()]) {
		return false
	}
	i := 0
	for i < len(d.decs) && !d.decs[i].detect(p) {
		i++
	}
	if i == len(d.decs) {
		return false
	}
	var err error
	d.out, err = d.decs[i].Decode(src, ts, p, d.out[:0])
	if err != nil {
		if d.ports == nil {
			return false // auto: not export after all; meter it
		}
		d.datagrams++
		d.malformed++
		return true
	}
	d.datagrams++
	d.flows += uint64(len(d.out))
	d.process(d.out)
	return true
}

// ExportCounts are the datagrams an ExportDecoder took since its last Reset.
type ExportCounts struct{ Datagrams, Flows, Malformed uint64 }

// Counts returns the datagrams taken since the last Reset.
func (d *ExportDecoder) Counts() ExportCounts {
	return ExportCounts{d.datagrams, d.flows, d.malformed}
}

// Reset starts the counts anew (at each file).
func (d *ExportDecoder) Reset() { d.datagrams, d.flows, d.malformed = 0, 0, 0 }
