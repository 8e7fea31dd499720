package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/rules"
)

// fileStamp summarises the config and rule files' names, sizes and
// modification times: a change of any shows as a different string.
func (d *Daemon) fileStamp() string {
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

func (d *Daemon) reloadErr() string {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// reload re-reads the config file as it is now and applies it (rules,
// notifiers, listeners and their decoders, shutdown), names the sections
// only a restart applies (see restartSections), re-reads the enrichment
// data once the config is accepted, and reopens output files. A config or
// rule set with errors is refused and the running one kept.
func (d *Daemon) reload() {
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
		set, err = LoadRules(nil, opts, io.Discard)
	} else {
		set, err = opts.Load(paths...)
	}
	disp := d.notify()
	var newDisp *notifiers.Dispatcher
	if err == nil && newCfg != nil && !reflect.DeepEqual(newCfg.Notifiers, d.cfg.Notifiers) {
		newDisp, err = d.notifiers.build(newCfg.Notifiers)
		if err == nil {
			disp = newDisp
		}
	}
	if err == nil {
		err = checkNotify(set, disp)
	}
	if err == nil {
		d.engine.pipe.Do(func(e *engine.Engine) { err = e.Reload(set) })
	}
	if err != nil && newDisp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), discardCloseTimeout)
		newDisp.Close(ctx)
		cancel()
	}
	if err == nil && newDisp != nil {
		// The old dispatcher delivers what it holds (or spools it) while
		// new alerts go to the new one.
		d.notifiers.swap(newDisp)
		d.cfg.Notifiers = newCfg.Notifiers
		d.log.Info("notifiers reloaded")
	}
	if err == nil && newCfg != nil {
		if needed, fresh := d.listeners.needsReconfigure(newCfg); needed {
			d.reloadErrs.Add(uint64(d.listeners.reconfigure(newCfg, fresh)))
			d.cfg.Listen, d.cfg.Sampling, d.cfg.ExporterClock = newCfg.Listen, newCfg.Sampling, newCfg.ExporterClock
		}
		d.cfg.Shutdown = newCfg.Shutdown
		known := newCfg.KnownExporters()
		d.knownExporters.Store(&known)
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
	d.noteThresholds(set)
	if err := d.enrich.set.Reload(); err != nil {
		d.log.Error("reload: enrichment data", "err", err)
	}
	d.log.Info("reloaded", "rules", len(set.Rules))
}
