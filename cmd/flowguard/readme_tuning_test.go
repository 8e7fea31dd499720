package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeCommands returns the flowguard command lines in the fenced blocks
// of a README.md section (from its "## title" heading to the next "## ").
func readmeCommands(t *testing.T, title string) []string {
	t.Helper()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var cmds []string
	inCode := false
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if inCode && strings.HasPrefix(line, "flowguard ") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// Every flowguard command of the README's tuning guide runs as written, on
// a generated capture standing in for day.pcap and a copy of the bundled
// rules for my-rules/, and writes what the guide says it writes: JSON lines
// of alerts, a JSON report, a text table.
func TestReadmeTuningCommands(t *testing.T) {
	cmds := readmeCommands(t, "Tuning rules")
	if len(cmds) < 5 {
		t.Fatalf("found %d flowguard commands in the tuning guide: %q", len(cmds), cmds)
	}
	bin := binary(t)
	dir := t.TempDir()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	if out, err := exec.Command(bin, "gen", "scenario", "-o", filepath.Join(dir, "day.pcap"), "--duration", "20s").CombinedOutput(); err != nil {
		t.Fatalf("gen scenario: %v\n%s", err, out)
	}
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "examples", "rules"), filepath.Join(dir, "my-rules")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	for _, c := range cmds {
		sh := exec.Command("timeout", "120", "bash", "-euo", "pipefail", "-c", c)
		sh.Dir = dir
		sh.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		start := time.Now()
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v after %s\n%s", c, err, time.Since(start).Round(time.Millisecond), out)
		}
	}
	for _, name := range []string{"alerts.jsonl", "alerts-after.jsonl"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) == 0 || lines[0] == "" {
			t.Fatalf("%s is empty", name)
		}
		for i, l := range lines {
			var a struct {
				Rule  string  `json:"rule"`
				Value float64 `json:"value"`
			}
			if err := json.Unmarshal([]byte(l), &a); err != nil || a.Rule == "" {
				t.Errorf("%s:%d is not an alert as JSON (%v): %.120s", name, i+1, err, l)
			}
		}
	}
	for _, name := range []string{"tuning.json", "tuning-after.json"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var report struct {
			Rules []struct {
				Rule string `json:"rule"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(data, &report); err != nil || len(report.Rules) == 0 {
			t.Errorf("%s is not the JSON report (%v): %.200s", name, err, data)
		}
	}
	text, err := os.ReadFile(filepath.Join(dir, "alerts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(text) == 0 || text[0] == '{' {
		t.Errorf("alerts.txt is not text alerts: %.200s", text)
	}
	for _, f := range []string{"scenario.pcap", "scenario.pcap.truth.json", "attacks.pcap", "attacks.pcap.truth.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the guide's gen scenario commands did not write %s: %v", f, err)
		}
	}
}
