package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/freeport"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// exportWithSoftflowd sends a capture to the daemon as NetFlow v9.
func exportWithSoftflowd(t *testing.T, d *daemonProc, capture string) {
	t.Helper()
	pcap, _ := filepath.Abs(filepath.Join("..", "..", "testdata", capture))
	softflowdExport(t, pcap, d.udp)
}

// waitAlerts polls /api/alerts for a rule until it holds n alerts.
func waitAlerts(t *testing.T, d *daemonProc, rule string, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	for range 100 {
		getJSON(t, "http://"+d.http+"/api/alerts?rule="+rule, &got)
		if len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %d alerts in /api/alerts, want %d", rule, len(got), n)
	return nil
}

// The running daemon, fed over real UDP by softflowd: alerts show in
// /api/alerts and /metrics; a reload with a broken rule file is refused
// and the old rules keep firing; a reload with a new rule fires it on the
// next flows.
func TestDaemonReloadAndAPI(t *testing.T) {
	rulesDir := t.TempDir()
	for _, f := range []string{"lists.yaml", "scans.yaml"} {
		b, _ := os.ReadFile(filepath.Join("..", "..", "examples", "rules", f))
		os.WriteFile(filepath.Join(rulesDir, f), b, 0o644)
	}
	d := startDaemon(t, fmt.Sprintf("rules: [%q]\nreload: {watch: 0s}\n", rulesDir))

	exportWithSoftflowd(t, d, "portscan.pcap")
	scan := waitAlerts(t, d, "vertical-port-scan", 1)
	if g := scan[0]["group"].(map[string]any); g["src_addr"] != "127.0.0.5" {
		t.Errorf("scan group %v", g)
	}
	if v := d.metric(t, "flowguard_alerts_total"); v != 1 {
		t.Errorf("flowguard_alerts_total %v, want 1", v)
	}
	var rules []map[string]any
	getJSON(t, "http://"+d.http+"/api/rules", &rules)
	if len(rules) != 2 || rules[0]["id"] != "vertical-port-scan" || rules[0]["alerts"] != float64(1) {
		t.Fatalf("/api/rules: %v", rules)
	}
	if top := rules[0]["top_groups"].([]any); len(top) == 0 {
		t.Errorf("no top groups for the scan rule")
	}
	var exporters []map[string]any
	for range 100 {
		getJSON(t, "http://"+d.http+"/api/exporters", &exporters)
		if len(exporters) == 1 && exporters[0]["flows"] == float64(4026) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(exporters) != 1 || exporters[0]["version"] != "netflow9" || exporters[0]["flows"] != float64(4026) {
		t.Errorf("/api/exporters: %v", exporters)
	}

	// A broken rule file: the reload is refused, the old rules still run.
	bad := filepath.Join(rulesDir, "new.yaml")
	os.WriteFile(bad, []byte("rules:\n  - id: telnet-probe\n    severity: sever\n    where: \"dst_port == 23\"\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	var status map[string]any
	for range 100 {
		getJSON(t, "http://"+d.http+"/api/status", &status)
		if status["reloads"] == float64(1) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status["reload_ok"] != false || status["reload_error"] == "" || status["rules"] != float64(2) {
		t.Fatalf("after a broken reload: %v", status)
	}
	if v := d.metric(t, "flowguard_reload_ok"); v != 0 {
		t.Errorf("flowguard_reload_ok %v after a refused reload", v)
	}
	exportWithSoftflowd(t, d, "hostsweep.pcap")
	waitAlerts(t, d, "horizontal-host-sweep", 3)

	// Fixed: the new rule runs on the next flows.
	os.WriteFile(bad, []byte("rules:\n  - id: telnet-probe\n    severity: low\n    where: \"dst_port == 23 && syn\"\n    group_by: [src_addr, dst_addr]\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	for range 100 {
		getJSON(t, "http://"+d.http+"/api/status", &status)
		if status["reloads"] == float64(2) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status["reload_ok"] != true || status["rules"] != float64(3) {
		t.Fatalf("after a good reload: %v", status)
	}
	exportWithSoftflowd(t, d, "portscan.pcap")
	probe := waitAlerts(t, d, "telnet-probe", 1)
	if g := probe[0]["group"].(map[string]any); g["src_addr"] != "127.0.0.5" || g["dst_addr"] != "127.0.0.9" {
		t.Errorf("telnet-probe group %v", g)
	}
	d.stop(t)
}

// A changed rule file is picked up without a signal.
func TestDaemonWatchesRuleFiles(t *testing.T) {
	rulesDir := t.TempDir()
	rule := func(id string) []byte {
		return []byte("rules:\n  - id: " + id + "\n    severity: low\n    where: \"dst_port == 23\"\n")
	}
	os.WriteFile(filepath.Join(rulesDir, "a.yaml"), rule("one"), 0o644)
	d := startDaemon(t, fmt.Sprintf("rules: [%q]\nreload: {watch: 100ms}\n", rulesDir))
	os.WriteFile(filepath.Join(rulesDir, "b.yaml"), rule("two"), 0o644)
	var status map[string]any
	for range 100 {
		getJSON(t, "http://"+d.http+"/api/status", &status)
		if status["rules"] == float64(2) {
			d.stop(t)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the new rule file was not loaded: %v", status)
}

// A reload applies changed listeners and notifiers: flows sent to the new
// port are collected, and alerts go to the newly configured file.
func TestDaemonReloadsListenersAndNotifiers(t *testing.T) {
	d := startDaemon(t, "reload: {watch: 0s}\n")
	newPort := freeport.Get(t, "udp")
	archive := filepath.Join(t.TempDir(), "alerts.jsonl")
	os.WriteFile(d.cfg, []byte(fmt.Sprintf("listen:\n  - {name: export, address: \"127.0.0.1:%d\"}\nhttp: {listen: %q}\n"+
		"reload: {watch: 0s}\nnotifiers:\n  - {name: archive, type: file, path: %q}\n", newPort, d.http, archive)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	var status map[string]any
	for range 100 {
		getJSON(t, "http://"+d.http+"/api/status", &status)
		if status["reloads"] == float64(1) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status["reload_ok"] != true {
		t.Fatalf("reload: %v", status)
	}
	d.udp = newPort
	exportWithSoftflowd(t, d, "portscan.pcap")
	for i := 0; ; i++ {
		b, _ := os.ReadFile(archive)
		if bytes.Contains(b, []byte(`"rule":"vertical-port-scan"`)) {
			break
		}
		if i > 100 {
			t.Fatalf("no scan alert in the new file notifier; stderr:\n%s", d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var n float64
	for range 100 {
		if n = d.metric(t, "flowguard_listener_flows_total"); n == 4026 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n != 4026 {
		t.Errorf("the new listener counted %v flows, want 4026", n)
	}
	d.stop(t)
	if bytes.Contains(d.stdout.Bytes(), []byte("vertical-port-scan")) {
		t.Error("the alert still went to stdout after the reload")
	}
}
