package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// startRedis runs a redis-server of the test's own on a free loopback port.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	port := freePort(t, "tcp")
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if bytes.HasPrefix(buf[:n], []byte("+PONG")) {
				return addr
			}
		}
		if i > 100 {
			t.Fatal("redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeScanHalves writes a port scan of 150 ports as two flow files, odd
// and even ports: each half (75 ports) stays under the bundled rule's
// threshold of 100, the whole crosses it.
func writeScanHalves(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var a, b bytes.Buffer
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for p := 1; p <= 150; p++ {
		at := t0.Add(time.Duration(p) * 20 * time.Millisecond).Format(time.RFC3339Nano)
		line, _ := json.Marshal(map[string]any{
			"type": "FILE", "time_flow_start": at, "time_flow_end": at,
			"src_addr": "198.51.100.23", "dst_addr": "10.20.30.40", "src_port": 40000, "dst_port": p,
			"proto": 6, "tcp_flags": 2, "packets": 1, "bytes": 44, "raw_packets": 1, "raw_bytes": 44,
		})
		w := &a
		if p%2 == 0 {
			w = &b
		}
		w.Write(append(line, '\n'))
	}
	fa, fb := filepath.Join(dir, "half-a.jsonl"), filepath.Join(dir, "half-b.jsonl")
	os.WriteFile(fa, a.Bytes(), 0o644)
	os.WriteFile(fb, b.Bytes(), 0o644)
	return fa, fb
}

// Two flowguard processes sharing one Redis, each replaying half of a port
// scan, raise exactly one scan alert between them; with memory stores,
// neither does.
func TestTwoProcessesShareRedisWindows(t *testing.T) {
	fa, fb := writeScanHalves(t)
	run2 := func(store string) int {
		cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
		os.WriteFile(cfg, []byte("store: "+store+"\n"), 0o644)
		var outs [2]bytes.Buffer
		var cmds [2]*exec.Cmd
		for i, f := range []string{fa, fb} {
			// 3 s of flows at their own pace: several 200 ms flushes.
			cmds[i] = exec.Command(binary(t), "replay", "-q", "--format", "json", "--speed", "1", "-c", cfg, f)
			cmds[i].Stdout = &outs[i]
			cmds[i].Stderr = os.Stderr
			if err := cmds[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		scans := 0
		for i := range cmds {
			if err := cmds[i].Wait(); err != nil {
				t.Fatalf("replay %d: %v", i, err)
			}
			for _, a := range alertsOf(t, outs[i].Bytes()) {
				if a["rule"] == "vertical-port-scan" {
					scans++
				}
			}
		}
		return scans
	}
	if n := run2("memory"); n != 0 {
		t.Errorf("memory stores: %d scan alerts, want 0 (each half is under the threshold)", n)
	}
	addr := startRedis(t)
	if n := run2("redis://" + addr + "/0"); n != 1 {
		t.Errorf("shared Redis: %d scan alerts, want exactly 1", n)
	}
}
