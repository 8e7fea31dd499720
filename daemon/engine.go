package daemon

import (
	"context"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/window"
	rediswindow "github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/lifecycle"
	"github.com/flowguard/flowguard/rules"
)

// engineConfig is the engine section with its defaults applied (see
// engineConfigOf): what the engine and the queue in front of it are
// built from.
type engineConfig struct {
	MaxKeys         int // 0: the engine's default
	Workers         int // engines the rules are split over
	QueueFlows      int // flows waiting for the engine at most
	MaxFiring       int // 0: the engine's default
	AllowedLateness time.Duration
	FutureTolerance time.Duration
}

// engineConfigOf applies the engine section's defaults.
func engineConfigOf(c *config.Config) engineConfig {
	return engineConfig{
		MaxKeys:         c.Engine.MaxKeys,
		Workers:         c.Engine.WorkerCount(),
		QueueFlows:      c.Engine.QueueLimit(),
		MaxFiring:       c.Engine.MaxFiring,
		AllowedLateness: time.Duration(c.Engine.AllowedLateness),
		FutureTolerance: time.Duration(c.Engine.FutureTolerance),
	}
}

// engineDeps are what the engine takes besides its config.
type engineDeps struct {
	Rules  *rules.Set
	Enrich *enrich.Set
	Store  window.Store
	// Emit receives the alerts, on the goroutine that processes flows.
	Emit func(*alert.Alert)
	// Observe, when set, sees every value an aggregate rule computes
	// (replay's tuning report).
	Observe func(r *rules.Rule, group []byte, value float64, f *flow.Flow)
	// Progress, when set, hears of firing alerts on the engine's ticks.
	Progress func(engine.Progress)
}

// newEngine builds the engine over the rules: its key bound and event
// time (README "Time"). Run and replay alike build theirs here.
func newEngine(cfg engineConfig, deps engineDeps) (*engine.Engine, error) {
	return engine.New(engine.Config{
		Store:           deps.Store,
		MaxKeys:         cfg.MaxKeys,
		Workers:         cfg.Workers,
		Enricher:        deps.Enrich,
		AllowedLateness: cfg.AllowedLateness,
		FutureTolerance: cfg.FutureTolerance,
		Emit:            deps.Emit,
		Observe:         deps.Observe,
		Progress:        deps.Progress,
		MaxFiring:       cfg.MaxFiring,
	}, deps.Rules)
}

// enginePipeline is the engine component: the engine and the queue in
// front of it (engine.Pipeline), which one goroutine drains from Start
// to Stop. Stop waits until the queue is drained and the goroutine has
// returned. Listeners, Kafka and ObserveFlows hand batches to pipe;
// readers and reloads reach the engine between batches with pipe.Do.
type enginePipeline struct {
	*engine.Engine
	pipe *engine.Pipeline
	// failed hears of a pipeline that stops on an error; set before Start.
	failed func(error)
	run    *lifecycle.Runner
}

// newEnginePipeline builds the engine and its queue, not yet running.
// With a Redis store the pipeline exchanges shared windows every flush
// interval.
func newEnginePipeline(cfg engineConfig, deps engineDeps) (*enginePipeline, error) {
	eng, err := newEngine(cfg, deps)
	if err != nil {
		return nil, err
	}
	pipe := engine.NewPipeline(eng, max(1, cfg.QueueFlows/engine.PipelineChunk))
	if rs, ok := deps.Store.(*rediswindow.Store); ok {
		pipe.ExchangeEvery(rs.FlushInterval())
	}
	return &enginePipeline{Engine: eng, pipe: pipe}, nil
}

// Name names the component.
func (p *enginePipeline) Name() string { return "engine" }

// Start runs the pipeline on a goroutine of its own.
func (p *enginePipeline) Start(ctx context.Context) error {
	p.run = lifecycle.Run(p.Name(), func(ctx context.Context) error { p.pipe.Run(ctx); return nil }, p.failed)
	return p.run.Start(ctx)
}

// Stop ends the pipeline once its queue is drained and waits for it.
func (p *enginePipeline) Stop(ctx context.Context) error {
	if p.run == nil {
		return nil
	}
	return p.run.Stop(ctx)
}
