package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/freeport"
	"github.com/flowguard/flowguard/web"
)

// authGet GETs a daemon URL with a bearer token ("" none).
func authGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// The probe of issue 12 against the real daemon, with a bearer token and
// the default connection limit (512): 1,000 idle keep-alive connections
// and 2,000 that never send a byte leave the daemon's file descriptors
// bounded, /healthz (open) and the token-protected API answering, and
// SIGHUP still reloading.
func TestDaemonSurvivesIdleConnectionStorm(t *testing.T) {
	token, hash, err := web.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp"))
	cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen:\n  - {name: export, address: \"127.0.0.1:%d\"}\nreload: {watch: 0s}\n"+
		"http:\n  listen: %q\n  bearer_tokens: [%q]\n  open_paths: [/healthz]\n", freeport.Get(t, "udp"), httpAddr, hash)), 0o644)
	var stderr bytes.Buffer
	cmd := exec.Command(binary(t), "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	base := "http://" + httpAddr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("daemon did not come up: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := authGet(t, base+"/api/status", ""); code != http.StatusUnauthorized {
		t.Fatalf("/api/status without a token: %d, want 401", code)
	}
	if code, _ := authGet(t, base+"/api/status", token+"x"); code != http.StatusUnauthorized {
		t.Fatalf("/api/status with a wrong token: %d, want 401", code)
	}
	fds0 := openFDs(t, cmd.Process.Pid)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 3000 {
		c, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if i < 1000 { // a keep-alive client that made one request and stays
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("keep-alive client %d: %v", i, err)
			}
			resp.Body.Close()
		}
	}
	metric := regexp.MustCompile(`(?m)^flowguard_http_connections_evicted_total (\S+)$`)
	var evicted float64
	for range 200 { // the daemon accepts behind the dials
		code, body := authGet(t, base+"/metrics", token)
		if code != 200 {
			t.Fatalf("/metrics with the token: %d", code)
		}
		if m := metric.FindSubmatch(body); m != nil {
			evicted, _ = strconv.ParseFloat(string(m[1]), 64)
		}
		if evicted >= 3000-512 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if evicted < 3000-512 {
		t.Errorf("%v idle connections closed to make room, want at least %d", evicted, 3000-512)
	}
	fds := openFDs(t, cmd.Process.Pid)
	t.Logf("daemon file descriptors: %d before, %d after 3,000 idle connections; %v evicted", fds0, fds, evicted)
	if fds > fds0+512+8 {
		t.Errorf("the daemon holds %d file descriptors after 3,000 idle connections, %d before: more than the 512 allowed", fds, fds0)
	}
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz during the storm: %v %v", resp, err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	var status map[string]any
	for range 100 {
		code, body := authGet(t, base+"/api/status", token)
		if code != 200 || json.Unmarshal(body, &status) != nil {
			t.Fatalf("/api/status with the token: %d %s", code, body)
		}
		if status["reloads"] == float64(1) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status["reloads"] != float64(1) || status["reload_ok"] != true {
		t.Errorf("SIGHUP during the storm: %v", status)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
}
