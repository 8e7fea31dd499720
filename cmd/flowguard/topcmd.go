package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowguard/flowguard/console/termtop"
)

const topSynopsis = `flowguard top [--url http://127.0.0.1:9310] [options]

Shows a running daemon's top talkers (sources, destinations, ports, AS
numbers) and its firing alerts in the terminal, refreshed live. Keys: q (or
Ctrl-C) quits, w cycles the window (1m, 5m, 15m), b switches bytes and
packets. With authentication on, give --user and the password in
FLOWGUARD_PASSWORD, or a bearer token in FLOWGUARD_TOKEN.`

// cmdTop: flowguard top (package console/termtop).
func cmdTop(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("top", topSynopsis, stdout, stderr)
	u := fs.String("url", "http://127.0.0.1:9310", "the daemon's HTTP address")
	window := fs.String("window", "5m", "window: 1m, 5m or 15m")
	by := fs.String("by", "bytes", "rank by bytes or packets")
	n := fs.Int("n", 10, "rows per table (1 to 100)")
	interval := fs.Duration("interval", 2*time.Second, "refresh period")
	user := fs.String("user", "", "basic auth user (password in FLOWGUARD_PASSWORD)")
	caFile := fs.String("ca-file", "", "CA certificates (PEM) for an https URL")
	once := fs.Bool("once", false, "print one screen and exit")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("top: unexpected argument %q", pos[0])
	}
	if *n < 1 || *n > 100 || *interval < 100*time.Millisecond {
		return usagef("top: -n is 1 to 100 and --interval at least 100ms")
	}
	o := termtop.Options{URL: *u, Window: *window, By: *by, N: *n, Interval: *interval,
		User: *user, Password: os.Getenv("FLOWGUARD_PASSWORD"), Token: os.Getenv("FLOWGUARD_TOKEN"),
		CAFile: *caFile, Once: *once}
	if err := o.Check(); err != nil {
		return usageError{err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return termtop.Run(ctx, o, stdin, stdout)
}
