package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/lockedbuf"
)

// pacedReplayFiles writes a rule that alerts on every flow and a flow
// file: one flow without any timestamp, then flows at t0, t0+gap and
// t0+2×gap.
func pacedReplayFiles(t *testing.T, gap time.Duration) (rulesPath, flowsPath string) {
	t.Helper()
	dir := t.TempDir()
	rulesPath = filepath.Join(dir, "every.yaml")
	os.WriteFile(rulesPath, []byte(`rules:
  - id: every-flow
    severity: low
    where: "proto > 0"
    group_by: [src_addr, dst_addr, src_port, dst_port, proto]
`), 0o644)
	var b bytes.Buffer
	line := func(port int, at string) {
		m := map[string]any{"type": "FILE", "src_addr": "198.51.100.23", "dst_addr": "10.20.30.40", "src_port": 40000,
			"dst_port": port, "proto": 6, "packets": 1, "bytes": 44}
		if at != "" {
			m["time_flow_start"], m["time_flow_end"] = at, at
		}
		j, _ := json.Marshal(m)
		b.Write(append(j, '\n'))
	}
	line(1, "") // no timestamp
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		line(10+i, t0.Add(time.Duration(i)*gap).Format(time.RFC3339Nano))
	}
	flowsPath = filepath.Join(dir, "flows.jsonl")
	os.WriteFile(flowsPath, b.Bytes(), 0o644)
	return rulesPath, flowsPath
}

// A flow without a timestamp does not set the pace: the replay at speed 1
// of flows 50 ms apart ends (the pacer once took it for a date in 1754
// and slept for centuries).
func TestReplayPacerZeroTime(t *testing.T) {
	rules, flows := pacedReplayFiles(t, 50*time.Millisecond)
	cmd := exec.Command(binary(t), "replay", "-q", "--format", "json", "--speed", "1", "--rules", rules, flows)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("replay: %v\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("a paced replay of 100 ms of flows did not end in 30 s")
	}
	if n := len(alertsOf(t, out.Bytes())); n != 3 {
		t.Errorf("%d alerts, want 3 (one per timed flow; the flow without time is not evaluated)", n)
	}
}

// Ctrl-C during a paced replay (flows an hour apart at speed 1) stops it
// at once: exit code 130, "interrupted" on stderr, the alert of the first
// flow written.
func TestReplayPacerInterrupt(t *testing.T) {
	rules, flows := pacedReplayFiles(t, time.Hour)
	cmd := exec.Command(binary(t), "replay", "--format", "json", "--stats", "none", "--speed", "1", "--rules", rules, flows)
	out, errb := &lockedbuf.Buffer{}, &lockedbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	for i := 0; !strings.Contains(out.String(), "every-flow"); i++ {
		if i > 400 {
			t.Fatalf("no first alert; stderr:\n%s", errb.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	// The replay now waits an hour for the next flow.
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("SIGINT did not stop the paced replay within 10 s")
	}
	took := time.Since(sent)
	t.Logf("stopped %v after SIGINT", took)
	if took > 2*time.Second {
		t.Errorf("stopped %v after SIGINT, want within a second or so", took)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitInterrupted, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "interrupted") || strings.Contains(s, "context canceled") {
		t.Errorf("stderr %q: want interrupted, not context canceled", s)
	}
	if n := len(alertsOf(t, []byte(out.String()))); n != 1 {
		t.Errorf("%d alerts, want the first flow's", n)
	}
}
