package main

import (
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/freeport"
	"github.com/flowguard/flowguard/internal/lockedbuf"
)

// interruptible starts a long-running command, waits until ready says it
// runs, sends it SIGINT and checks that it ends within a second with exit
// code 130 and a short "interrupted" line on stderr.
func interruptible(t *testing.T, ready func(stdout, stderr string) bool, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	out, errb := &lockedbuf.Buffer{}, &lockedbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when the command has ended
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	for i := 0; !ready(out.String(), errb.String()); i++ {
		if i > 400 {
			t.Fatalf("%v did not get going; stdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
		}
		select {
		case <-done:
			t.Fatalf("%v ended before SIGINT (%v); stderr:\n%s", args, cmd.ProcessState, errb.String())
		case <-time.After(25 * time.Millisecond):
		}
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%v still runs 5 s after SIGINT; stderr:\n%s", args, errb.String())
	}
	took := time.Since(sent)
	t.Logf("%v: exit %d %v after SIGINT", args[:2], cmd.ProcessState.ExitCode(), took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("%v took %v to stop after SIGINT, want within 1 s", args, took)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("%v: exit code %d after SIGINT, want %d; stderr:\n%s", args, code, exitInterrupted, errb.String())
	}
	last := lastLine(errb.String())
	if !strings.Contains(last, "interrupted") || len(last) > 120 || strings.Contains(errb.String(), "context canceled") {
		t.Errorf("%v: stderr should end in a short \"interrupted\" line, not:\n%s", args, errb.String())
	}
	return out.String(), errb.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// slowPipe makes a named pipe at path whose writer sends head, then
// nothing until the test ends: an input that never finishes.
func slowPipe(t *testing.T, path string, head func(w *os.File)) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		head(w)
		<-release
	}()
}

// Ctrl-C stops `flowguard run` within a second: it drains and exits 130.
func TestInterruptRun(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen:\n  - {name: n, address: \"127.0.0.1:%d\"}\nhttp: {listen: \"127.0.0.1:%d\"}\n",
		freeport.Get(t, "udp"), freeport.Get(t, "tcp"))), 0o644)
	interruptible(t, func(_, e string) bool { return strings.Contains(e, "msg=listening") }, "run", "-c", cfg)
}

// Ctrl-C stops an unpaced replay whose input is slow (a pipe that stalls
// after part of a gzipped capture) within a second.
func TestInterruptReplayUnpaced(t *testing.T) {
	capture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "portscan.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	pipe := filepath.Join(t.TempDir(), "slow.pcap.gz")
	slowPipe(t, pipe, func(w *os.File) {
		zw := gzip.NewWriter(w)
		zw.Write(capture[:64<<10])
		zw.Flush()
	})
	binary(t) // built before the clock starts: a first build takes longer than the wait
	start := time.Now()
	interruptible(t, func(_, _ string) bool { return time.Since(start) > 500*time.Millisecond },
		"replay", "--stats", "none", pipe)
}

// Ctrl-C stops `gen stream` within a second.
func TestInterruptGenStream(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	binary(t) // built before the clock starts: a first build takes longer than the wait
	start := time.Now()
	interruptible(t, func(_, _ string) bool { return time.Since(start) > 300*time.Millisecond },
		"gen", "stream", "--to", pc.LocalAddr().String(), "--rate", "100", "--count", "1000000")
}

// Ctrl-C stops `rules test` within a second, also while a case's
// flows.jsonl is still arriving.
func TestInterruptRulesTest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - {id: every-flow, severity: low, where: \"proto == 6\"}\n"), 0o644)
	c := filepath.Join(dir, "tests", "slow")
	os.MkdirAll(c, 0o755)
	os.WriteFile(filepath.Join(c, "expected.jsonl"), nil, 0o644)
	line := `{"type":"FILE","time_flow_end":"2026-11-02T09:00:00Z","src_addr":"10.0.0.1","dst_addr":"10.0.0.2","proto":17,"packets":1,"bytes":60}` + "\n"
	slowPipe(t, filepath.Join(c, "flows.jsonl"), func(w *os.File) {
		w.WriteString(strings.Repeat(line, 100)) // more than the 4 KiB read to detect the format
	})
	binary(t) // built before the clock starts: a first build takes longer than the wait
	start := time.Now()
	interruptible(t, func(_, _ string) bool { return time.Since(start) > 500*time.Millisecond }, "rules", "test", dir)
}

// Ctrl-C stops both receivers within a second.
func TestInterruptReceive(t *testing.T) {
	for _, kind := range []string{"syslog", "webhook"} {
		t.Run(kind, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp"))
			out, _ := interruptible(t, func(o, e string) bool {
				if !strings.Contains(e, "Ctrl-C stops") {
					return false
				}
				if kind == "webhook" && !strings.Contains(o, "webhook POST") {
					resp, err := http.Post("http://"+addr+"/hook", "application/json", strings.NewReader(`{"rule": "x"}`))
					if err == nil {
						resp.Body.Close()
					}
					return false
				}
				if kind == "syslog" && !strings.Contains(o, "syslog udp") {
					if c, err := net.Dial("udp", addr); err == nil {
						c.Write([]byte("<14>1 - host app - - - hello"))
						c.Close()
					}
					return false
				}
				return true
			}, "receive", kind, "--listen", addr)
			if !strings.Contains(out, kind) {
				t.Errorf("printed nothing of what arrived:\n%s", out)
			}
		})
	}
}
