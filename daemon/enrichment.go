package daemon

import (
	"context"
	"log/slog"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/lifecycle"
)

// enrichmentConfig is the enrich section (its defaults are applied by
// enrich.Build).
type enrichmentConfig struct {
	Enrich enrich.Config
}

// enrichmentConfigOf takes the enrichment's section of the config.
func enrichmentConfigOf(c *config.Config) enrichmentConfig {
	return enrichmentConfig{Enrich: c.Enrich}
}

// enrichmentDeps are what the enrichment takes besides its config.
type enrichmentDeps struct {
	Logger *slog.Logger
}

// enrichment is the enrichment component: GeoIP/ASN, named networks and
// threat lists (enrich.Set), whose file watches run on a goroutine of
// their own from Start to Stop. Reloads re-read the data (set.Reload).
type enrichment struct {
	set *enrich.Set
	// failed hears of watches that stop on an error; set before Start.
	failed func(error)
	run    *lifecycle.Runner
}

// newEnrichment builds the enrichment and loads its data, not yet
// watching the files.
func newEnrichment(cfg enrichmentConfig, deps enrichmentDeps) (*enrichment, error) {
	set, err := enrich.Build(cfg.Enrich, deps.Logger)
	if err != nil {
		return nil, ConfigError{err}
	}
	return &enrichment{set: set}, nil
}

// Name names the component.
func (e *enrichment) Name() string { return "enrich" }

// Start watches the data files.
func (e *enrichment) Start(ctx context.Context) error {
	e.run = lifecycle.Run(e.Name(), e.set.Run, e.failed)
	return e.run.Start(ctx)
}

// Stop ends the watches and waits for their goroutine.
func (e *enrichment) Stop(ctx context.Context) error {
	if e.run == nil {
		return nil
	}
	return e.run.Stop(ctx)
}
