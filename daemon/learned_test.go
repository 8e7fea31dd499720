package daemon

import (
	be "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/engine"
)

// toyPorts is a toy datagram of flows from 198.51.100.7 to 10.0.0.1 on
// the given ports.
func toyPorts(ports ...uint16) []byte {
	p := []byte("TOY1")
	for _, port := range ports {
		p = append(p, 198, 51, 100, 7, 10, 0, 0, 1)
		p = be.BigEndian.AppendUint16(p, port)
	}
	return p
}

// What a rule learned survives a restart of the daemon: saved to
// learn.state_dir at stop, loaded at start. The ports the first run saw
// are not new to the second; another is. /api/rules and /metrics show
// the learned groups.
func TestLearnedStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	ruleText := `
rules:
  - id: new-port
    severity: low
    group_by: [src_addr]
    new_terms: {field: dst_port, learning: 0s}
    suppress: 1s
`
	os.WriteFile(rulesPath, []byte(ruleText), 0o644)
	stateDir := filepath.Join(dir, "learned")
	start := func() (*testDaemon, func()) {
		td := newTestDaemon(t)
		td.writeConfig(t, fmt.Sprintf("rules: [%q]\nlearn: {state_dir: %q, save_every: 1h}\nreload: {watch: 50ms}\nnotifiers:\n  - {name: out, type: file, path: %q}\n",
			rulesPath, stateDir, filepath.Join(t.TempDir(), "alerts.jsonl")))
		return td, td.start(t, nil)
	}

	d1, stop1 := start()
	d1.send(t, "127.0.0.31", toyPorts(443, 80, 22)) // one alert (the three share a time), three terms learned
	d1.waitMetric(t, "flowguard_engine_flows_total", 3)
	d1.waitMetric(t, "flowguard_alerts_total", 1)
	d1.waitMetric(t, `flowguard_rule_learned_groups{rule="new-port"}`, 1)
	var rules []struct {
		ID      string
		Learned *engine.LearnedSummary
	}
	getJSON(t, "http://"+d1.http+"/api/rules", &rules)
	if len(rules) != 1 || rules[0].Learned == nil || rules[0].Learned.Kind != "new_terms" ||
		len(rules[0].Learned.Top) != 1 || rules[0].Learned.Top[0].Terms != 3 {
		t.Fatalf("/api/rules: %+v", rules)
	}
	// A reload that changes the rule's severity keeps what it learned.
	os.WriteFile(rulesPath, []byte(strings.Replace(ruleText, "severity: low", "severity: medium", 1)), 0o644)
	d1.waitMetric(t, "flowguard_reloads_total", 1)
	getJSON(t, "http://"+d1.http+"/api/rules", &rules)
	if rules[0].Learned == nil || len(rules[0].Learned.Top) != 1 || rules[0].Learned.Top[0].Terms != 3 {
		t.Fatalf("/api/rules after a reload: %+v", rules)
	}
	os.WriteFile(rulesPath, []byte(ruleText), 0o644)
	d1.waitMetric(t, "flowguard_reloads_total", 2)
	stop1()
	if _, err := os.Stat(filepath.Join(stateDir, engine.LearnedFile)); err != nil {
		t.Fatalf("no state saved at stop: %v", err)
	}

	d2, stop2 := start()
	defer stop2()
	d2.waitMetric(t, "flowguard_learned_state_syncs_total", 1) // loaded
	d2.send(t, "127.0.0.31", toyPorts(443, 80, 22))
	d2.waitMetric(t, "flowguard_engine_flows_total", 3)
	d2.send(t, "127.0.0.31", toyPorts(3389))
	d2.waitMetric(t, "flowguard_engine_flows_total", 4)
	d2.waitMetric(t, "flowguard_alerts_total", 1)
	if n := scrapeMetric(t, d2.http, "flowguard_alerts_total"); n != 1 {
		t.Fatalf("%v alerts after the restart, want 1 (port 3389 only)", n)
	}
}
