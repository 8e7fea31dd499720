package main

import (
	"fmt"
	"io"
)

const configUsage = `Usage:
  flowguard config check -c FILE   validate the config and everything it names (rules,
                                   databases, lists, notifiers) without starting

Run 'flowguard config check --help' for its options.
`

const configCheckSynopsis = `flowguard config check -c FILE

Loads the config as run would, then the rules, enrichment databases and
lists, and builds the notifiers, without listening or sending anything.
Prints "config ok: ..." and exits 0, or every error and exits 2.`

// cmdConfig dispatches the config subcommands.
func cmdConfig(args []string, out, errw io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(errw, configUsage)
			return usagef("config: missing subcommand")
		}
		fmt.Fprint(out, configUsage)
		return nil
	}
	if args[0] != "check" {
		return unknownCommand("config", args[0], []string{"check"})
	}
	fs := newFlagSet("config check", configCheckSynopsis, out, errw)
	cfgPath := fs.String("c", "", "config file (see examples/flowguard.yaml)")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("config check: unexpected argument %q (the config is given with -c)", pos[0])
	}
	return checkConfig(*cfgPath, out, errw)
}
