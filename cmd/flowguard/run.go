package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowguard/flowguard/daemon"
)

const runSynopsis = `flowguard run [-c flowguard.yaml] [--format json|text] [--check]

Runs the collector: listens for NetFlow/IPFIX/sFlow (by default NetFlow on
:2055, IPFIX on :4739, sFlow on :6343, every version accepted on each),
enriches flows, evaluates the rules (by default the bundled examples) on
windows in memory, sends alerts to the configured notifiers (by default
stdout) and serves /metrics, /healthz, /readyz and /api (by default on 127.0.0.1:9310).
SIGHUP reloads the config (sections only a restart applies are named in
/api/status) and enrichment data, and reopens output files;
SIGINT or SIGTERM stop it cleanly.`

func cmdRun(args []string, out, errw io.Writer) error {
	fs := newFlagSet("run", runSynopsis, out, errw)
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
	d, err := daemon.New(cfg, daemon.Options{ConfigPath: *cfgPath, Format: *format, Stdout: out, Stderr: errw, Version: version})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.Run(ctx)
}

// checkConfig validates everything run would load, without starting.
func checkConfig(path string, out, errw io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	n, err := daemon.Check(cfg, path, version, errw)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "config ok: %s, %s, %s\n", plural(n.Rules, "rule"), plural(n.Listeners, "listener"), plural(n.Notifiers, "notifier"))
	return nil
}
