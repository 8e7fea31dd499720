package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/flowguard/flowguard/config/check"
	"github.com/flowguard/flowguard/daemon"
	"github.com/flowguard/flowguard/notifiers"
)

const runSynopsis = `flowguard run [-c flowguard.yaml] [--format json|text] [--check]

Runs the collector: listens for NetFlow/IPFIX/sFlow (by default NetFlow on
:2055, IPFIX on :4739, sFlow on :6343, every version accepted on each),
enriches flows, evaluates the rules (by default the bundled examples) on
windows in memory, sends alerts to the configured notifiers (by default
stdout) and serves /metrics, /healthz, /readyz and /api (by default on 127.0.0.1:9310).
SIGHUP reloads the config (sections only a restart applies are named in
/api/status) and enrichment data, and reopens output files;
SIGTERM or SIGINT (Ctrl-C, then exit code 130) stop it cleanly.`

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
	attachConsole(d)
	// SIGTERM stops it (exit 0); so does Ctrl-C, which then exits 130 as
	// every interrupted command does. A second Ctrl-C kills at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var interrupted atomic.Bool
	go func() {
		select {
		case s := <-sig:
			if s == os.Interrupt {
				interrupted.Store(true)
				signal.Reset(os.Interrupt)
			}
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := d.Run(ctx); err != nil {
		return err
	}
	if interrupted.Load() {
		return errInterrupted
	}
	return nil
}

// checkConfig validates everything run would load, without starting, and
// prints every problem at once, sorted by file and line (config/check).
func checkConfig(path string, out, errw io.Writer) error {
	res := check.Run(path, notifiers.Deps{Stdout: io.Discard, Version: version})
	if len(res.Errors) > 0 {
		for _, e := range res.Errors {
			fmt.Fprintln(errw, e)
		}
		return usagef("%s", plural(len(res.Errors), "error"))
	}
	fmt.Fprintf(out, "config ok: %s, %s, %s\n", plural(len(res.Rules.Rules), "rule"), plural(len(res.Config.Listen), "listener"),
		plural(max(1, len(res.Config.Notifiers.Notifiers)), "notifier"))
	return nil
}
