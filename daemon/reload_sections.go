package daemon

import (
	"reflect"
	"slices"

	"github.com/flowguard/flowguard/config"
)

// restartSections are the config sections a reload cannot apply: the
// components they configure are built once, at start. A reload that finds
// one changed logs it, lists it in /api/status's restart_needed and sets
// flowguard_restart_needed{section}; the running daemon keeps the section
// as it started. Every other section is applied by the reload: rules,
// notifiers and routes, listen, sampling and exporter_clock (listeners
// rebound with fresh decoders), shutdown, and the enrichment data (files
// re-read). meter is read by replay only.
var restartSections = []struct {
	name string
	of   func(*config.Config) any
}{
	{"store", func(c *config.Config) any { return c.Store }},
	{"engine", func(c *config.Config) any { return c.Engine }},
	{"ingest", func(c *config.Config) any { return c.Ingest }},
	{"enrich", func(c *config.Config) any { return c.Enrich }},
	{"http", func(c *config.Config) any { return c.HTTP }},
	{"log", func(c *config.Config) any { return c.Log }},
	{"reload", func(c *config.Config) any { return c.Reload }},
}

var (
	restartNeededDesc = desc("restart_needed",
		"1 for a config section changed on disk that only a restart applies (see /api/status restart_needed), else 0.", "section")
	reloadsDesc      = desc("reloads_total", "Reloads asked for (SIGHUP).")
	reloadErrorsDesc = desc("reload_errors_total", "Reloads refused for errors.")
	reloadOKDesc     = desc("reload_ok", "1 if the last reload succeeded.")
	rulesLoadedDesc  = desc("rules_loaded", "Rules running.")
)

// noteRestartNeeded compares an accepted config's sections that only a
// restart applies with those running, logs each that changed, and keeps
// the list for /api/status and /metrics.
func (d *Daemon) noteRestartNeeded(next *config.Config) {
	var changed []string
	for _, s := range restartSections {
		if !reflect.DeepEqual(s.of(next), s.of(d.cfg)) {
			changed = append(changed, s.name)
			d.log.Warn(s.name+" changed: needs a restart", "section", s.name)
		}
	}
	d.restartNeeded.Store(&changed)
}

// restartNeededList returns the sections waiting for a restart (never nil).
func (d *Daemon) restartNeededList() []string {
	if p := d.restartNeeded.Load(); p != nil && *p != nil {
		return *p
	}
	return []string{}
}

// reloadMetrics reports the reloads' outcome and, for every section a
// reload cannot apply, whether it waits for a restart.
func (d *Daemon) reloadMetrics() metricSet {
	return func(m emit) {
		m.counter(reloadsDesc, d.reloads.Load())
		m.counter(reloadErrorsDesc, d.reloadErrs.Load())
		m.flag(reloadOKDesc, d.reloadOK.Load())
		m.gauge(rulesLoadedDesc, float64(d.ruleCount.Load()))
		need := d.restartNeededList()
		for _, s := range restartSections {
			m.flag(restartNeededDesc, slices.Contains(need, s.name), s.name)
		}
	}
}
