package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowguard/flowguard/notifiers/receive"
)

const receiveUsage = `Usage:
  flowguard receive syslog [--listen ADDR]   print the syslog messages that arrive (UDP and TCP)
  flowguard receive webhook [--listen ADDR]  print the bodies POSTed to any path, answering 200

Both print one line per message on stdout until Ctrl-C: the far ends of the
syslog and webhook notifiers, to try flowguard out or check what it sends.
`

const receiveSyslogSynopsis = `flowguard receive syslog [--listen ADDR]

Listens on ADDR over UDP and TCP (RFC 6587 octet counting, or one message a
line) and prints each message as "syslog udp|tcp FROM: MESSAGE".`

const receiveWebhookSynopsis = `flowguard receive webhook [--listen ADDR]

Answers every POST (or PUT) on ADDR with 200 and prints its body, JSON on
one line, as "webhook POST PATH FROM: BODY".`

// cmdReceive runs a syslog or webhook receiver until Ctrl-C or SIGTERM.
func cmdReceive(args []string, out, errw io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(errw, receiveUsage)
			return usagef("receive: missing subcommand")
		}
		fmt.Fprint(out, receiveUsage)
		return nil
	}
	kind := args[0]
	synopsis, addr := receiveSyslogSynopsis, "127.0.0.1:5514"
	switch kind {
	case "syslog":
	case "webhook":
		synopsis, addr = receiveWebhookSynopsis, "127.0.0.1:9000"
	default:
		return unknownCommand("receive", kind, []string{"syslog", "webhook"})
	}
	fs := newFlagSet("receive "+kind, synopsis, out, errw)
	listen := fs.String("listen", addr, "address to listen on, host:port")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("receive %s: unexpected argument %q", kind, pos[0])
	}
	p := receive.NewPrinter(out)
	var serve func(context.Context) error
	var bound string
	if kind == "syslog" {
		s, err := receive.ListenSyslog(*listen, p)
		if err != nil {
			return usagef("receive syslog: %w", err)
		}
		serve, bound = s.Serve, s.Addr()+" (udp and tcp)"
	} else {
		wh, err := receive.ListenWebhook(*listen, p)
		if err != nil {
			return usagef("receive webhook: %w", err)
		}
		serve, bound = wh.Serve, "http://"+wh.Addr()+"/"
	}
	fmt.Fprintf(errw, "flowguard: receiving %s on %s; Ctrl-C stops\n", kind, bound)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	select {
	case err := <-done:
		return err
	case s := <-sig:
		cancel()
		<-done
		if s == os.Interrupt {
			return errInterrupted
		}
		return nil
	}
}
