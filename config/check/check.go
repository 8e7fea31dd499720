// Package check validates a configuration and everything it names (rule
// files, enrichment databases and lists, TLS files, notifier settings)
// without listening or sending anything, and reports every problem at
// once, each at file:line:col, sorted by file and line: what `flowguard
// config check` prints.
package check

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all" // every notifier type
	"github.com/flowguard/flowguard/rules"
	"github.com/flowguard/flowguard/web"
	"gopkg.in/yaml.v3"
)

// Result is what a check found.
type Result struct {
	// Config is the configuration as far as it could be read (never nil).
	Config *config.Config
	// Rules are the valid rules (nil when the config could not be read).
	Rules *rules.Set
	// Errors are every problem, the config file's first, then each rule
	// file's in load order; by line and column within a file.
	Errors config.ErrorList
}

// Run checks the configuration at path ("" for the defaults) and what it
// names. deps are given to the notifier factories (Stdout should be
// io.Discard); every notifier built is closed before Run returns.
func Run(path string, deps notifiers.Deps) Result {
	var (
		cfg  *config.Config
		root *yaml.Node
		errs config.ErrorList
	)
	if path == "" {
		cfg, _ = config.Load("")
	} else {
		cfg, root, errs = config.Check(path)
		if root == nil { // unreadable, or not YAML: nothing more to check
			return Result{Config: cfg, Errors: errs}
		}
	}
	files := []string{path}
	locate := func(err error) {
		if err != nil {
			errs = append(errs, config.Locate(path, root, err)...)
		}
	}

	set, err := loadRules(cfg)
	var list rules.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			errs = append(errs, ruleError(path, root, cfg.Rules, e))
			if !slices.Contains(files, e.File) {
				files = append(files, e.File)
			}
		}
	} else {
		locate(err)
	}

	// The config's validation already stats enrich's files; open them only
	// when it found nothing there, so that one missing file is one error.
	if !slices.ContainsFunc(errs, func(e *config.Error) bool { return strings.HasPrefix(e.Msg, "enrich.") }) {
		if _, err := enrich.Build(cfg.Enrich, slog.New(slog.DiscardHandler)); err != nil {
			locate(err)
		}
	}
	if cfg.HTTP.Listen != "off" {
		_, err := web.New(cfg.HTTP, nil) // reads the TLS files
		locate(err)
	}
	if len(cfg.Notifiers.Notifiers) > 0 {
		locate(notifiers.CheckSettings(cfg.Notifiers, deps))
		named := map[string]bool{}
		for _, nc := range cfg.Notifiers.Notifiers {
			named[nc.Name] = true
		}
		for _, r := range set.Rules {
			for _, n := range r.Notify {
				if !named[n] {
					errs = append(errs, &config.Error{File: r.File, Line: r.Line, Column: r.Column,
						Msg: fmt.Sprintf("rule %q: notify: no notifier named %q", r.ID, n)})
				}
			}
		}
	}
	errs.Sort(files...)
	return Result{Config: cfg, Rules: set, Errors: errs}
}

// loadRules loads the rules the config names, or the bundled pack.
func loadRules(cfg *config.Config) (*rules.Set, error) {
	if len(cfg.Rules) == 0 {
		return cfg.RulesOptions().LoadFS(examples.Rules, "rules")
	}
	return cfg.RulesOptions().Load(cfg.Rules...)
}

// ruleError turns a rule error into a config one. A rule path that cannot
// be read is placed where the config names it (rules[i]).
func ruleError(path string, root *yaml.Node, paths []string, e *rules.Error) *config.Error {
	if i := slices.Index(paths, e.File); i >= 0 && e.Line == 0 && root != nil {
		placed := config.Locate(path, root, fmt.Errorf("rules[%d]: %s", i, e.Msg))
		return placed[0]
	}
	bare := *e
	bare.File, bare.Line, bare.Column = "", 0, 0
	msg := bare.Error()[len(": "):]
	return &config.Error{File: e.File, Line: e.Line, Column: e.Column, Msg: msg}
}
