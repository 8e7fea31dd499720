package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command's --help (and -h) prints its usage on stdout, nothing on
// stderr, and exits 0; a command with flags lists them.
func TestHelpOnStdout(t *testing.T) {
	cases := []struct {
		args []string
		want []string // in the help
	}{
		{[]string{"--help"}, []string{"flowguard run", "Exit codes"}},
		{[]string{"help"}, []string{"flowguard replay"}},
		{[]string{"run", "--help"}, []string{"Usage: flowguard run", "-check", "-format"}},
		{[]string{"replay", "-h"}, []string{"Usage: flowguard replay", "-stats", "-format"}},
		{[]string{"rules", "--help"}, []string{"flowguard rules validate", "flowguard rules test"}},
		{[]string{"rules", "validate", "--help"}, []string{"Usage: flowguard rules validate", "-allow-empty", "-cost"}},
		{[]string{"rules", "test", "--help"}, []string{"Usage: flowguard rules test"}},
		{[]string{"config", "--help"}, []string{"flowguard config check -c FILE"}},
		{[]string{"config", "check", "--help"}, []string{"Usage: flowguard config check", "Options:", "-c string"}},
		{[]string{"lookup", "--help"}, []string{"Usage: flowguard lookup", "-geoip"}},
		{[]string{"gen", "--help"}, []string{"flowguard gen scenario", "flowguard gen stream"}},
		{[]string{"gen", "scenario", "--help"}, []string{"Usage: flowguard gen scenario", "-seed", "replay --format json --stats json"}},
		{[]string{"gen", "stream", "--help"}, []string{"Usage: flowguard gen stream", "-rate"}},
		{[]string{"receive", "--help"}, []string{"flowguard receive syslog", "flowguard receive webhook"}},
		{[]string{"receive", "syslog", "--help"}, []string{"Usage: flowguard receive syslog", "-listen"}},
		{[]string{"receive", "webhook", "--help"}, []string{"Usage: flowguard receive webhook", "-listen"}},
		{[]string{"replay", "--help"}, []string{"-truth"}},
		{[]string{"web", "--help"}, []string{"flowguard web new-token"}},
		{[]string{"web", "hash-password", "--help"}, []string{"Usage: flowguard web hash-password", "-cost"}},
		{[]string{"web", "new-token", "--help"}, []string{"Usage: flowguard web new-token"}},
		{[]string{"web", "hash-token", "--help"}, []string{"Usage: flowguard web hash-token"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			if code != exitOK {
				t.Errorf("exit %d, want 0; stderr: %s", code, errb.String())
			}
			if errb.Len() != 0 {
				t.Errorf("stderr not empty: %q", errb.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "Runs the collector") && c.args[0] != "run" {
				t.Errorf("%v prints run's help:\n%s", c.args, out.String())
			}
		})
	}
}

// Mistakes exit 2 with the usage error on stderr, and a misspelt flag or
// command names the one meant.
func TestUsageErrorsSuggest(t *testing.T) {
	cases := []struct {
		args []string
		want string // on stderr
	}{
		{nil, "Usage:"},
		{[]string{"config"}, "config: missing subcommand"},
		{[]string{"confg"}, `did you mean 'flowguard config'?`},
		{[]string{"replya", "x.pcap"}, `did you mean 'flowguard replay'?`},
		{[]string{"rules", "valdate", "x"}, `did you mean 'flowguard rules validate'?`},
		{[]string{"config", "chek"}, `did you mean 'flowguard config check'?`},
		{[]string{"gen", "scenaro"}, `did you mean 'flowguard gen scenario'?`},
		{[]string{"web", "new-tokn"}, `did you mean 'flowguard web new-token'?`},
		{[]string{"replay", "--formt", "json", "x.pcap"}, "unknown flag --formt: did you mean --format?"},
		{[]string{"replay", "--stat", "json", "x.pcap"}, "did you mean --stats?"},
		{[]string{"rules", "validate", "--alow-empty", "x"}, "did you mean --allow-empty?"},
		{[]string{"lookup", "--zzzzzz", "127.0.0.1"}, "unknown flag --zzzzzz; run 'flowguard lookup --help'"},
		{[]string{"blah"}, "one of: run, replay"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, &out, &errb)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, errb.String())
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), c.want)
			}
			if strings.Contains(errb.String(), "flowguard: flowguard") {
				t.Errorf("stderr repeats the program name: %q", errb.String())
			}
		})
	}
}

// Counts read as English: "1 rule", "2 rules".
func TestPluralCounts(t *testing.T) {
	dir := t.TempDir()
	rule := func(id string) string {
		return "  - id: " + id + "\n    severity: low\n    where: \"proto == 6\"\n    count: flows\n    group_by: [src_addr]\n    window: 1m\n    threshold: 10\n"
	}
	one := filepath.Join(dir, "one.yaml")
	two := filepath.Join(dir, "two.yaml")
	os.WriteFile(one, []byte("rules:\n"+rule("a")), 0o644)
	os.WriteFile(two, []byte("rules:\n"+rule("b")+rule("c")), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "validate", one}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := out.String(); got != "1 rule in 1 file: ok\n" {
		t.Errorf("rules validate said %q", got)
	}
	out.Reset()
	if code := run([]string{"rules", "validate", one, two}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := out.String(); got != "3 rules in 2 files: ok\n" {
		t.Errorf("rules validate said %q", got)
	}
	out.Reset()
	pack, _ := filepath.Abs(filepath.Join("..", "..", "examples", "rules"))
	if code := run([]string{"rules", "test", pack}, &out, &errb); code != 0 {
		t.Fatalf("rules test: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "tests/blocked-country (1 alert)\n") || strings.Contains(out.String(), "(1 alerts)") {
		t.Errorf("rules test said:\n%s", out.String())
	}
	for n, want := range map[int]string{0: "0 errors", 1: "1 error", 2: "2 errors"} {
		if got := plural(n, "error"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}
