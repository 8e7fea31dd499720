package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/flowguard/flowguard/daemon"
	"github.com/flowguard/flowguard/engine/ruletest"
	"github.com/flowguard/flowguard/rules"
)

const rulesUsage = `Usage:
  flowguard rules validate PATH...   load rule files or folders, print every error as
                                     file:line:col: rule "id": field: message
                                     --cost: print each rule's estimated cost per flow
                                     --allow-empty: accept files that define nothing
                                     -c FILE: the limits (rules_limits) of a config
  flowguard rules test PATH...       run the test cases of rule folders (PATH/tests/*/
                                     with flows.jsonl and expected.jsonl)
`

func cmdRules(args []string, out, errw io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, rulesUsage)
		if len(args) == 0 {
			return usagef("rules: missing subcommand")
		}
		return nil
	}
	switch args[0] {
	case "validate":
		return cmdRulesValidate(args[1:], out, errw)
	case "test":
		return cmdRulesTest(args[1:], out, errw)
	}
	return unknownCommand("rules", args[0], []string{"validate", "test"})
}

func cmdRulesValidate(args []string, out, errw io.Writer) error {
	fs := newFlagSet("rules validate", "flowguard rules validate [--cost] [--allow-empty] [-c CONFIG] PATH...", out, errw)
	cost := fs.Bool("cost", false, "print each rule's estimated worst-case cost per flow")
	allowEmpty := fs.Bool("allow-empty", false, "accept rule files that define nothing (rules_allow_empty)")
	cfgPath := fs.String("c", "", "take rules_limits and rules_allow_empty from this config file")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("rules validate: no rule file or folder given")
	}
	var opts rules.Options
	if *cfgPath != "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		opts = cfg.RulesOptions()
	}
	opts.AllowEmpty = opts.AllowEmpty || *allowEmpty
	set, err := opts.Load(paths...)
	if *cost && set != nil {
		printRuleCosts(out, set, opts.Limits)
	}
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(errw, e)
			}
			return usagef("%s in rules", plural(len(list), "error"))
		}
		return usageError{err}
	}
	fmt.Fprintf(out, "%s in %s: ok\n", plural(len(set.Rules), "rule"), plural(len(set.Files), "file"))
	return nil
}

func cmdRulesTest(args []string, out, errw io.Writer) error {
	fs := newFlagSet("rules test", "flowguard rules test PATH...", out, errw)
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("rules test: no rule folder given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	defer context.AfterFunc(ctx, stop)() // a second Ctrl-C kills at once
	failed, total := 0, 0
	for _, p := range paths {
		set, err := loadRules([]string{p}, errw)
		if err != nil {
			return err
		}
		dir := p
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return usagef("rules test: %s: give the rule folder (its tests/ holds the cases)", p)
		}
		cases, err := ruletest.FindCases(dir)
		if err != nil {
			return err
		}
		if len(cases) == 0 {
			return usagef("rules test: %s: no test cases (expected %s/tests/NAME/%s)", p, p, ruletest.FlowsFile)
		}
		for _, c := range cases {
			r := ruletest.RunContext(ctx, set, c)
			if ctx.Err() != nil {
				fmt.Fprintf(out, "%d passed, %d failed before %s\n", total-failed, failed, c)
				return errInterrupted
			}
			fmt.Fprintln(out, r)
			total++
			if !r.Passed() {
				failed++
			}
		}
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", total-failed, failed)
	if failed > 0 {
		return fmt.Errorf("rules test: %d of %s failed", failed, plural(total, "case"))
	}
	return nil
}

// loadRules loads rule paths, or the bundled examples when there are none,
// with the default options. Any error in the rules is a usage error (exit
// 2), printed in full.
func loadRules(paths []string, errw io.Writer) (*rules.Set, error) {
	return loadRulesWith(paths, rules.Options{}, errw)
}

// loadRulesWith is loadRules with options (a config's limits).
func loadRulesWith(paths []string, opts rules.Options, errw io.Writer) (*rules.Set, error) {
	return daemon.LoadRules(paths, opts, errw)
}

// printRuleCosts writes one line per valid rule: where it is defined, its
// estimated worst-case cost per flow against the limit, and whether its
// conditions run as compiled closures or on the expr VM (which allocates).
func printRuleCosts(out io.Writer, set *rules.Set, lim rules.Limits) {
	max := lim.MaxCost
	if max <= 0 {
		max = rules.DefaultLimits.MaxCost
	}
	for _, r := range set.Rules {
		eval := "native"
		if !r.Native() {
			eval = "vm"
		}
		fmt.Fprintf(out, "%s:%d:%d: rule %q: cost %d of %d, %s\n", r.File, r.Line, r.Column, r.ID, r.Cost(), max, eval)
	}
}
