// Command flowguard is a flow-based security alerting engine: it reads
// flows (NetFlow, IPFIX, sFlow, packet captures, flow files), evaluates
// YAML detection rules over sliding windows, and sends alerts.
//
// Usage:
//
//	flowguard run [-c flowguard.yaml]
//	flowguard replay [--rules PATH]... [--format json|text] FILE...
//	flowguard rules validate PATH...
//	flowguard rules test PATH...
//	flowguard config check -c FILE
//	flowguard lookup [-c FILE] [--geoip FILE.mmdb]... ADDRESS...
//	flowguard gen scenario|stream ...
//	flowguard receive syslog|webhook [--listen ADDR]
//	flowguard top [--url URL]
//	flowguard web hash-password|new-token|hash-token
//	flowguard version
//
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage, config or rules, 130
// stopped by Ctrl-C (docs/exit-codes.md).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/flowguard/flowguard/daemon"
	"github.com/flowguard/flowguard/daemon/replay"
)

// Exit codes (README.md).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitInterrupted: a command stopped by Ctrl-C (128 + SIGINT, as
	// shells report it); what it did up to there is written.
	exitInterrupted = 130
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errInterrupted ends a command stopped by Ctrl-C before its end.
var errInterrupted = replay.ErrInterrupted

// usageError marks errors that are the caller's: bad flags, config, rules.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

const topUsage = `flowguard: flow-based security alerting

Usage:
  flowguard run [-c flowguard.yaml] the collector daemon: NetFlow/IPFIX/sFlow in,
                                  alerts out, /metrics, /healthz and the web view
  flowguard replay [-c FILE] [--rules PATH]... [--format json|text] FILE...
                                  replay pcap/pcapng, goflow2 JSON or nfdump CSV
                                  files through the rules on event time
  flowguard rules validate PATH...  check rule files; every error as file:line:col
  flowguard rules test PATH...      run the rule packs' test cases
  flowguard config check -c FILE  validate config, rules, databases, lists and notifiers
  flowguard lookup [--geoip DB]... ADDRESS...
                                  what enrichment says of an address
  flowguard gen scenario|stream ...  write scenario pcaps with ground truth, or stream
                                  NetFlow/IPFIX/sFlow at a rate to a loopback collector
  flowguard receive syslog|webhook [--listen ADDR]
                                  print the syslog messages or webhook POSTs that
                                  arrive: the far end of those notifiers, for trials
  flowguard top [--url http://127.0.0.1:9310]
                                  a daemon's top talkers and firing alerts, live
  flowguard web hash-password|new-token|hash-token
                                  make credentials for the http section
  flowguard version                 print the version

Run 'flowguard COMMAND --help' for a command's options.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage, config or rules, 130 stopped by Ctrl-C.
`

// commands are the top-level commands, for suggestions.
var commands = []string{"run", "replay", "rules", "config", "lookup", "gen", "receive", "top", "web", "version", "help"}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "replay":
		err = cmdReplay(args[1:], stdout, stderr)
	case "rules":
		err = cmdRules(args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "gen":
		err = cmdGen(args[1:], stdout, stderr)
	case "lookup":
		err = cmdLookup(args[1:], stdout, stderr)
	case "receive":
		err = cmdReceive(args[1:], stdout, stderr)
	case "top":
		err = cmdTop(args[1:], os.Stdin, stdout, stderr)
	case "web":
		err = cmdWeb(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "flowguard", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
	default:
		err = unknownCommand("", args[0], commands)
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintln(stderr, "flowguard:", err)
	if errors.Is(err, errInterrupted) {
		return exitInterrupted
	}
	var ue usageError
	var ce daemon.ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return exitUsage
	}
	return exitFailure
}
