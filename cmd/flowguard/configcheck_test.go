package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `config check` prints every problem of every layer at once (config
// keys and values, rule paths, databases, notifier settings and names, the
// rule files), each as file:line:col, sorted by file and line, then "N
// errors" and exit code 2.
func TestConfigCheckEveryErrorAtOnce(t *testing.T) {
	cmd := exec.Command(binary(t), "config", "check", "-c", "flowguard.yaml")
	cmd.Dir = filepath.Join("..", "..", "config", "check", "testdata", "several")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 13 || lines[12] != "flowguard: 12 errors" {
		t.Fatalf("want 12 errors then the count, got:\n%s", stderr.String())
	}
	for i, prefix := range []string{
		"flowguard.yaml:4:5: rules[1]:", "flowguard.yaml:6:10: log.level:", "flowguard.yaml:7:3: unknown key",
		"flowguard.yaml:9:13:", "flowguard.yaml:12:17: enrich.geoip", "flowguard.yaml:18:10: notifiers[0]",
		"flowguard.yaml:19:11: notifiers[1]", "flowguard.yaml:21:5: notifiers[1]",
		"rules/scans.yaml:5:25:", "rules/scans.yaml:12:15:", "rules/scans.yaml:13:28:", "rules/scans.yaml:18:5:",
	} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d: %q, want it to start %q", i+1, lines[i], prefix)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %s", stdout.String())
	}
	// A YAML syntax error: its line and column, one error.
	out, _ := exec.Command(binary(t), "config", "check", "-c", filepath.Join("..", "..", "config", "check", "testdata", "syntax.yaml")).CombinedOutput()
	if !strings.Contains(string(out), "syntax.yaml:5:1: YAML syntax: found character") || !strings.Contains(string(out), "flowguard: 1 error\n") {
		t.Errorf("syntax error:\n%s", out)
	}
}
