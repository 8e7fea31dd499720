package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rules validate rejects the macro bomb with the rule and the limit, and
// --cost prints every rule's cost.
func TestRulesValidateLimitsAndCost(t *testing.T) {
	var out, errb bytes.Buffer
	bomb := filepath.Join("..", "..", "rules", "testdata", "bad", "bomb.yaml")
	if code := run([]string{"rules", "validate", bomb}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), `bomb.yaml:37:12: rule "bomb": where: macro "b29": expands to more than 2000 nodes (limit max_nodes)`) {
		t.Fatalf("bomb: exit %d\n%s", code, errb.String())
	}

	out.Reset()
	errb.Reset()
	pack := filepath.Join("..", "..", "examples", "rules")
	if code := run([]string{"rules", "validate", "--cost", pack}, &out, &errb); code != 0 {
		t.Fatalf("bundled pack: exit %d\n%s", code, errb.String())
	}
	lines := regexp.MustCompile(`(?m)^\S+\.yaml:\d+:\d+: rule "[a-z0-9-]+": cost (\d+) of 1000, (native|vm)$`).FindAllString(out.String(), -1)
	if len(lines) < 5 || !strings.HasSuffix(out.String(), "ok\n") {
		t.Fatalf("--cost output:\n%s", out.String())
	}

	// A config's limits apply: a lower max_cost refuses the pack.
	cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
	os.WriteFile(cfg, []byte("rules_limits: {max_cost: 3}\n"), 0o644)
	out.Reset()
	errb.Reset()
	if code := run([]string{"rules", "validate", "-c", cfg, pack}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "is above the limit of 3 (max_cost;") {
		t.Fatalf("max_cost 3: exit %d\n%s", code, errb.String())
	}
}

// A truncated (empty) rule file is refused unless allowed.
func TestRulesValidateEmptyFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "cut.yaml")
	os.WriteFile(empty, []byte("# rules for the DMZ\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "validate", empty}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "cut.yaml: defines no list, macro or rule") {
		t.Fatalf("empty file: exit %d\n%s", code, errb.String())
	}
	if code := run([]string{"rules", "validate", "--allow-empty", empty}, &out, &errb); code != 0 {
		t.Fatalf("--allow-empty: exit %d\n%s", code, errb.String())
	}
}

// The daemon counts a condition's run-time errors in /metrics and
// /api/rules, and logs the first one only.
func TestDaemonReportsRuleErrors(t *testing.T) {
	rulesDir := t.TempDir()
	os.WriteFile(filepath.Join(rulesDir, "r.yaml"), []byte(`rules:
  - id: divide
    severity: low
    where: "bytes % (dst_port - dst_port) == 0"
  - id: any-syn
    severity: low
    where: syn
    group_by: [src_addr, dst_addr, dst_port]
`), 0o644)
	d := startDaemon(t, "rules: ["+`"`+rulesDir+`"`+"]\n")
	exportWithSoftflowd(t, d, "portscan.pcap")
	waitAlerts(t, d, "any-syn", 1)
	var errs float64
	for range 100 {
		if errs = d.metric(t, `flowguard_rule_errors_total{rule="divide"}`); errs > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errs == 0 {
		t.Fatal("flowguard_rule_errors_total{rule=\"divide\"} stayed 0")
	}
	if v := d.metric(t, `flowguard_rule_errors_total{rule="any-syn"}`); v != 0 {
		t.Errorf("any-syn: %v errors", v)
	}
	var rules []map[string]any
	getJSON(t, "http://"+d.http+"/api/rules", &rules)
	var divide map[string]any
	for _, r := range rules {
		if r["id"] == "divide" {
			divide = r
		}
	}
	if divide == nil || divide["errors"].(float64) < errs || !strings.Contains(divide["last_error"].(string), "divide by zero") ||
		divide["matches"] != float64(0) {
		t.Fatalf("/api/rules: %v", divide)
	}

	// A reload meeting the macro bomb, then a truncated rule file, is
	// refused with the limit named; the rules keep running, and the
	// daemon's memory stays small.
	reload := func(n int, file, content, want string) {
		t.Helper()
		os.WriteFile(filepath.Join(rulesDir, file), []byte(content), 0o644)
		d.cmd.Process.Signal(syscall.SIGHUP)
		var status map[string]any
		for range 200 {
			getJSON(t, "http://"+d.http+"/api/status", &status)
			if status["reloads"] == float64(n) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if status["reload_ok"] != false || !strings.Contains(fmt.Sprint(status["reload_error"]), want) || status["rules"] != float64(2) {
			t.Fatalf("reload with %s: %v", file, status)
		}
		os.Remove(filepath.Join(rulesDir, file))
	}
	bomb, err := os.ReadFile(filepath.Join("..", "..", "rules", "testdata", "bad", "bomb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reload(1, "bomb.yaml", string(bomb), `rule "bomb": where: macro "b29": expands to more than 2000 nodes (limit max_nodes)`)
	reload(2, "cut.yaml", "# the DMZ rules, cut short\n", "cut.yaml: defines no list, macro or rule")
	rss := processRSS(t, d.cmd.Process.Pid)
	t.Logf("daemon RSS after the refused reloads: %d MB", rss>>20)
	if rss > 256<<20 {
		t.Errorf("daemon RSS %d MB after the bomb, want < 256 MB", rss>>20)
	}
	d.stop(t)
	if n := strings.Count(d.stderr.String(), "rule condition failed at run time"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, d.stderr.String())
	}
}

// processRSS reads a process's resident set size from /proc.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}
