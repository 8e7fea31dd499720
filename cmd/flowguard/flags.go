package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/flowguard/flowguard/rules"
)

// errHelp ends a command that printed its help on request.
var errHelp = errors.New("help requested")

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// flagSet is a command's flags with its synopsis: help asked for goes to
// out (exit 0), usage after a mistake to errw (exit 2).
type flagSet struct {
	*flag.FlagSet
	synopsis  string
	out, errw io.Writer
}

// newFlagSet returns a flag set whose errors are usage errors, whose help
// on request goes to out and whose usage after a mistake goes to errw.
func newFlagSet(name, synopsis string, out, errw io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print its error and the usage itself; the
	// error is returned instead (with a suggestion) and printed once.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, synopsis: synopsis, out: out, errw: errw}
}

// Usage writes the synopsis and options to errw, after a mistake.
func (fs *flagSet) Usage() { fs.printUsage(fs.errw) }

// printUsage writes the synopsis and every option to w.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n", fs.synopsis)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nOptions:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones. -h and --help print
// the usage on out and end the command with errHelp (exit 0); an unknown
// flag names the closest defined one.
func parseInterleaved(fs *flagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.out)
				return nil, errHelp
			}
			return nil, usageError{fs.explain(err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// explain adds to a parse error the closest flag name, when the error is
// an unknown flag, and where the options are listed.
func (fs *flagSet) explain(err error) error {
	const unknown = "flag provided but not defined: -"
	msg := err.Error()
	hint := fmt.Sprintf("run 'flowguard %s --help' for the options", fs.Name())
	if name, ok := strings.CutPrefix(msg, unknown); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s, ok := closest(name, names); ok {
			return fmt.Errorf("%s: unknown flag %s: did you mean %s?", fs.Name(), dashes(name), dashes(s))
		}
		return fmt.Errorf("%s: unknown flag %s; %s", fs.Name(), dashes(name), hint)
	}
	return fmt.Errorf("%s: %w; %s", fs.Name(), err, hint)
}

// dashes writes a flag name as the help does: -c, --format.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// closest returns the candidate nearest to s in edit distance, if it is
// near enough to be a misspelling: at most a third of its length away
// (at least 1), or s is a prefix of it.
func closest(s string, candidates []string) (string, bool) {
	best, bestD := "", -1
	for _, c := range candidates {
		d := rules.EditDistance(s, c)
		if len(s) >= 2 && strings.HasPrefix(c, s) {
			d = min(d, 1)
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(1, len(s)/3) {
		return "", false
	}
	return best, true
}

// unknownCommand is the usage error for a command or subcommand that does
// not exist, naming the closest one.
func unknownCommand(parent, got string, known []string) error {
	where := strings.TrimSpace("flowguard " + parent)
	if s, ok := closest(got, known); ok {
		return usagef("unknown command %q: did you mean '%s %s'?", got, where, s)
	}
	return usagef("unknown command %q (one of: %s); run '%s --help'", got, strings.Join(known, ", "), where)
}

// plural writes n and the noun, in the plural unless n is 1:
// "1 rule", "2 rules".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
