package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/internal/freeport"
)

// startRedis runs a redis-server of the test's own on a free loopback port.
func startRedis(t *testing.T) string {
	t.Helper()
	addr, _ := startRedisProc(t)
	return addr
}

// startRedisProc is startRedis that also returns the process, for tests
// that stop Redis under a running daemon.
func startRedisProc(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	port := freeport.Get(t, "tcp")
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
				return addr, cmd
			}
		}
		if i > 100 {
			t.Fatal("redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeScanHalves writes a port scan of 150 ports, one every step, as two
// flow files, odd and even ports: each half (75 ports) stays under the
// bundled rule's threshold of 100, the whole crosses it.
func writeScanHalves(t *testing.T, step time.Duration) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var a, b bytes.Buffer
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for p := 1; p <= 150; p++ {
		at := t0.Add(time.Duration(p) * step).Format(time.RFC3339Nano)
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
	testTwoReplays(t, 20*time.Millisecond) // 3 s of flows: several flushes
}

// The same scan in a burst of 30 ms: no flow of the group comes after
// either process's flush, so the one that learns the other's half fires
// on the exchange itself.
func TestTwoProcessesFireFastScanOnExchange(t *testing.T) {
	testTwoReplays(t, 200*time.Microsecond)
}

// sharedStore is the store setting of instances sharing the Redis at
// addr. A suppression claim that Redis does not answer within
// claim_timeout (50 ms by default) is made locally, so that ingest never
// waits; on a loaded test machine that can let both instances fire, so
// the tests allow a claim a second.
func sharedStore(addr string) string {
	return "{redis: {url: \"redis://" + addr + "/0\", claim_timeout: 1s}}"
}

func testTwoReplays(t *testing.T, step time.Duration) {
	fa, fb := writeScanHalves(t, step)
	run2 := func(store string) int {
		cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
		os.WriteFile(cfg, []byte("store: "+store+"\n"), 0o644)
		var outs [2]bytes.Buffer
		var cmds [2]*exec.Cmd
		for i, f := range []string{fa, fb} {
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
	if n := run2(sharedStore(addr)); n != 1 {
		t.Errorf("shared Redis: %d scan alerts, want exactly 1", n)
	}
}

// Two daemons sharing one Redis, each sent half of a port scan as NetFlow
// v5 over UDP in a burst of 30 ms, then nothing: exactly one scan alert
// between them, within about two flush intervals.
func TestTwoDaemonsFireFastScanOnExchange(t *testing.T) {
	addr := startRedis(t)
	var ds [2]*daemonProc
	for i := range ds {
		ds[i] = startDaemon(t, "store: "+sharedStore(addr)+"\n")
	}
	src, dst := netip.MustParseAddr("198.51.100.23"), netip.MustParseAddr("10.20.30.40")
	t0 := time.Now().UTC()
	var halves [2][]flow.Flow
	for p := 1; p <= 150; p++ {
		at := t0.Add(time.Duration(p) * 200 * time.Microsecond)
		f := flow.Flow{SrcAddr: src, DstAddr: dst, SrcPort: 40000, DstPort: uint16(p), Proto: 6, TCPFlags: flow.TCPSyn,
			Packets: 1, Bytes: 44, RawPackets: 1, RawBytes: 44, TimeFlowStart: at, TimeFlowEnd: at}
		halves[p%2] = append(halves[p%2], f)
	}
	start := time.Now()
	for i, d := range ds {
		enc, err := gen.NewEncoder(gen.NetFlowV5, gen.EncoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", d.udp))
		if err != nil {
			t.Fatal(err)
		}
		for fl := halves[i]; len(fl) > 0; {
			dgram, n := enc.Encode(nil, fl, t0.Add(30*time.Millisecond))
			if _, err := c.Write(dgram); err != nil {
				t.Fatal(err)
			}
			fl = fl[n:]
		}
		c.Close()
	}
	scans := func() int {
		n := 0
		for _, d := range ds {
			var got []map[string]any
			getJSON(t, "http://"+d.http+"/api/alerts?rule=vertical-port-scan", &got)
			n += len(got)
		}
		return n
	}
	for scans() == 0 && time.Since(start) < 5*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(time.Second) // room for a second alert, which must not come
	n := scans()
	for _, d := range ds {
		d.stop(t)
	}
	t.Logf("first scan alert %v after the datagrams were sent", took)
	if n != 1 {
		for _, d := range ds {
			t.Logf("daemon stderr:\n%s", d.stderr.String())
		}
		t.Fatalf("%d scan alerts, want exactly 1 (each half is under the threshold; suppression is shared)", n)
	}
	if took > 2*time.Second {
		t.Errorf("scan alert after %v, want within about two flush intervals (200 ms each)", took)
	}
	var a map[string]any
	for _, d := range ds {
		for _, x := range alertsOf(t, d.stdout.Bytes()) {
			if x["rule"] == "vertical-port-scan" {
				a = x
			}
		}
	}
	if a == nil || fmt.Sprint(group(a)) != fmt.Sprint(map[string]any{"src_addr": src.String(), "dst_addr": dst.String()}) {
		t.Errorf("scan alert %v, want the group %v → %v", a, src, dst)
	}
	// the other daemon's half arrives as a HyperLogLog estimate (Redis
	// PFCOUNT, 0.81% standard error): 150 give or take one or two
	if v, _ := a["value"].(float64); a != nil && (v < 148 || v > 152) {
		t.Errorf("value %v, want 150 (±2, an estimate)", a["value"])
	}
}
