package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession runs `flowguard top` in a detached tmux session of a server
// of the test's own (its own socket), 160x50.
type tmuxSession struct {
	t    *testing.T
	sock string
	name string
}

func newTmux(t *testing.T, name, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: the flowguard top test runs it under tmux; install it (apt-get install tmux)")
	}
	s := &tmuxSession{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock"), name: name}
	if out, err := s.cmd("new-session", "-d", "-s", name, "-x", "160", "-y", "50", command).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { s.cmd("kill-server").Run() })
	return s
}

func (s *tmuxSession) cmd(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-S", s.sock, "-f", "/dev/null"}, args...)...)
}

func (s *tmuxSession) capture() string {
	out, _ := s.cmd("capture-pane", "-p", "-t", s.name).Output()
	return string(out)
}

// waitScreen waits until the pane shows every one of want.
func (s *tmuxSession) waitScreen(d time.Duration, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		screen := s.capture()
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen does not show %q:\n%s", missing, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	if out, err := s.cmd(append([]string{"send-keys", "-t", s.name}, keys...)...).CombinedOutput(); err != nil {
		s.t.Fatalf("send-keys: %v %s", err, out)
	}
}

// gone waits for the session to end and returns how long it took.
func (s *tmuxSession) gone(limit time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	for s.cmd("has-session", "-t", s.name).Run() == nil {
		if time.Since(start) > limit {
			s.t.Fatalf("still running after %s:\n%s", limit, s.capture())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// flowguard top against a daemon fed by `flowguard gen stream`, in a real
// terminal (tmux): it shows the talkers and the firing alert, refreshes,
// takes keys, and quits on q or Ctrl-C within a second.
func TestTopUnderTmux(t *testing.T) {
	d := startDaemon(t, "")
	stream := exec.Command(binary(t), "gen", "stream", "--to", fmt.Sprintf("127.0.0.1:%d", d.udp), "--proto", "v9",
		"--rate", "2000", "--duration", "60s", "--count", "200000")
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Process.Kill(); stream.Wait() })
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.5", "127.0.0.9", 150), 0)

	// A binary built with -race sleeps a second at exit unless told not to.
	top := fmt.Sprintf("GORACE=atexit_sleep_ms=0 %s top --url http://%s --interval 300ms --window 1m", binary(t), d.http)
	s := newTmux(t, "top", top)
	screen := s.waitScreen(15*time.Second, "window 1m by bytes", "FIRING ALERTS (1)", "vertical-port-scan", "127.0.0.5", "SOURCES", "DESTINATIONS", "443/tcp", "pkts")
	t.Logf("screen:\n%s", screen)
	s.keys("w")
	s.waitScreen(5*time.Second, "window 5m by bytes")
	s.keys("b")
	s.waitScreen(5*time.Second, "window 5m by packets")
	s.keys("q")
	t.Logf("q quit in %s", s.gone(time.Second))

	s2 := newTmux(t, "top2", top)
	s2.waitScreen(15*time.Second, "SOURCES")
	s2.keys("C-c")
	t.Logf("Ctrl-C quit in %s", s2.gone(time.Second))
}
