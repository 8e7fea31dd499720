package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sighupAndWait sends SIGHUP and waits for /api/status to count reload n.
func sighupAndWait(t *testing.T, d *daemonProc, n int) map[string]any {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGHUP)
	var status map[string]any
	for range 200 {
		getJSON(t, "http://"+d.http+"/api/status", &status)
		if status["reloads"] == float64(n) {
			return status
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("reload %d not seen: %v", n, status)
	return nil
}

// exporterSampling returns the sampling rates /api/exporters shows.
func exporterSampling(t *testing.T, d *daemonProc) []float64 {
	t.Helper()
	var rows []map[string]any
	getJSON(t, "http://"+d.http+"/api/exporters", &rows)
	var out []float64
	for _, r := range rows {
		out = append(out, r["sampling_rate"].(float64))
	}
	return out
}

// A reload applies sampling (listeners rebound with fresh decoders) and
// names the sections only a restart applies, in the log, /api/status and
// /metrics; an unchanged config names none.
func TestReloadAppliesOrNamesEverySection(t *testing.T) {
	d := startDaemon(t, "reload: {watch: 0s}\n")
	base, _ := os.ReadFile(d.cfg)

	if st := sighupAndWait(t, d, 1); st["reload_ok"] != true || fmt.Sprint(st["restart_needed"]) != "[]" {
		t.Fatalf("unchanged config: %v", st)
	}
	sendFlows(t, d, 20)
	if got := exporterSampling(t, d); fmt.Sprint(got) != "[1]" {
		t.Fatalf("sampling before the reload: %v, want [1]", got)
	}

	os.WriteFile(d.cfg, append(base, []byte("sampling: {default: 100}\n"+
		"store: redis://127.0.0.1:1/0\nengine: {max_keys: 1234}\n")...), 0o644)
	st := sighupAndWait(t, d, 2)
	if st["reload_ok"] != true || fmt.Sprint(st["restart_needed"]) != "[store engine]" {
		t.Fatalf("after the reload: %v", st)
	}
	if v := d.metric(t, "flowguard_restart_needed"); v != 2 {
		t.Errorf("flowguard_restart_needed sums to %v, want 2", v)
	}
	for _, s := range []string{"store changed: needs a restart", "engine changed: needs a restart"} {
		if !strings.Contains(d.stderr.String(), s) {
			t.Errorf("log lacks %q", s)
		}
	}
	sendFlows(t, d, 40) // 20 more: the engine counts 40
	if got := exporterSampling(t, d); fmt.Sprint(got) != "[100]" {
		t.Errorf("sampling after the reload: %v, want [100] (the listener's fresh decoder)\n%s", got, d.stderr.String())
	}

	// Back as it started: nothing waits for a restart.
	os.WriteFile(d.cfg, base, 0o644)
	if st := sighupAndWait(t, d, 3); fmt.Sprint(st["restart_needed"]) != "[]" {
		t.Errorf("config as started: restart_needed %v", st["restart_needed"])
	}
	if v := d.metric(t, "flowguard_restart_needed"); v != 0 {
		t.Errorf("flowguard_restart_needed sums to %v, want 0", v)
	}
	d.stop(t)
}

// A reload replaces a webhook whose receiver hangs: the old dispatcher
// drains on, and shutdown waits for it until the deadline, so that its
// alerts are accounted for (spooled) and logged before the exit.
func TestReloadDrainWaitedAtShutdown(t *testing.T) {
	const deadline = 2 * time.Second
	_, spool, _, d, emitted := startHungDelivery(t, deadline, 50)
	archive := filepath.Join(t.TempDir(), "alerts.jsonl")
	next := strings.Replace(string(mustRead(t, d.cfg)), "notifiers:\n", fmt.Sprintf("notifiers:\n  - {name: archive, type: file, path: %q}\n", archive), 1)
	next = strings.Replace(next, "  - name: hook\n    type: webhook\n", "  - name: hook2\n    type: webhook\n", 1)
	os.WriteFile(d.cfg, []byte(next), 0o644)
	if st := sighupAndWait(t, d, 1); st["reload_ok"] != true {
		t.Fatalf("reload: %v\n%s", st, d.stderr.String())
	}
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	// While the notifiers drain, HTTP still answers: not ready.
	stopping := false
	for !stopping && time.Since(start) < deadline {
		if resp, err := http.Get("http://" + d.http + "/readyz"); err == nil {
			resp.Body.Close()
			stopping = resp.StatusCode == http.StatusServiceUnavailable
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !stopping {
		t.Error("/readyz did not answer 503 while the daemon was stopping")
	}
	if err := <-exited; err != nil {
		t.Fatalf("exit: %v\n%s", err, d.stderr.String())
	}
	took := time.Since(start)
	t.Logf("stopped in %v with a draining dispatcher (deadline %v)", took.Round(time.Millisecond), deadline)
	if took > deadline+6*time.Second {
		t.Errorf("stopping took %v with shutdown.timeout %v", took, deadline)
	}
	log := d.stderr.String()
	if !strings.Contains(log, "notifiers replaced by a reload") || !strings.Contains(log, "kept in the spool") {
		t.Errorf("the replaced dispatcher's drain was not waited for; log:\n%s", log)
	}
	if n := spoolCount(t, spool); n != emitted {
		t.Errorf("%d alerts in the old spool, want %d", n, emitted)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
