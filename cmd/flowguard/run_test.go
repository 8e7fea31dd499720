package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/freeport"
	"github.com/flowguard/flowguard/internal/lockedbuf"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds flowguard once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowguard-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "flowguard")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemonProc is a running `flowguard run`.
type daemonProc struct {
	cmd    *exec.Cmd
	stdout *lockedbuf.Buffer // written by the process while the test reads
	stderr *lockedbuf.Buffer
	http   string
	udp    int
	cfg    string
}

func startDaemon(t *testing.T, extra string) *daemonProc {
	t.Helper()
	return startDaemonHTTP(t, "", extra)
}

// startDaemonHTTP starts a daemon whose http section has httpKeys besides
// its listen address (", basic_auth_users: {...}").
func startDaemonHTTP(t *testing.T, httpKeys, extra string) *daemonProc {
	t.Helper()
	d := &daemonProc{stdout: &lockedbuf.Buffer{}, stderr: &lockedbuf.Buffer{}}
	d.udp = freeport.Get(t, "udp")
	d.http = fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp"))
	cfg := filepath.Join(t.TempDir(), "flowguard.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen:\n  - {name: export, address: \"127.0.0.1:%d\"}\nhttp: {listen: %q%s}\n%s",
		d.udp, d.http, httpKeys, extra)), 0o644)
	d.cfg = cfg
	d.cmd = exec.Command(binary(t), "run", "-c", cfg)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + d.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("daemon did not come up: %s", d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// metric reads one sample from /metrics ("" labels: the first match).
func (d *daemonProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`)
	var sum float64
	for _, m := range re.FindAllSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		sum += v
	}
	return sum
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d.stderr.String())
	}
}

func alertsOf(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a map[string]any
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("not an alert: %s", sc.Text())
		}
		out = append(out, a)
	}
	return out
}

// softflowd (a real exporter) reads the committed port-scan capture and
// exports it as NetFlow v5, v9 and IPFIX to `flowguard run`: every flow
// arrives, and the scan raises the same alert the replay of the capture
// raises.
func TestRunWithSoftflowd(t *testing.T) {
	started := time.Now()
	sf := softflowdPath(t)
	pcap, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "portscan.pcap"))
	replayed, _, _ := replayJSON(t, pcap)
	var want map[string]any
	for _, a := range replayed {
		if a["rule"] == "vertical-port-scan" {
			want = a
		}
	}
	if want == nil {
		t.Fatal("replay raised no scan alert")
	}
	for _, v := range []string{"5", "9", "10"} {
		t.Run("v"+v, func(t *testing.T) {
			d := startDaemon(t, "")
			tmp := t.TempDir()
			// -c none: with a control socket, softflowd 1.1.0 reading a
			// file may block in accept() (it tests poll results it never
			// polled for), depending on what its stack held.
			out, err := exec.Command("timeout", "30", sf, "-r", pcap, "-n", fmt.Sprintf("127.0.0.1:%d", d.udp),
				"-v", v, "-a", "-d", "-p", filepath.Join(tmp, "pid"), "-c", "none").CombinedOutput()
			if err != nil {
				t.Fatalf("softflowd: %v\n%s", err, out)
			}
			var flows float64
			for i := 0; i < 100; i++ {
				flows = d.metric(t, "flowguard_engine_flows_total")
				if flows == 4026 || (flows > 0 && flows == d.metric(t, "flowguard_listener_flows_total") && i > 40) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if errs := d.metric(t, "flowguard_listener_malformed_total"); errs != 0 {
				t.Errorf("%v malformed datagrams", errs)
			}
			if lost := d.metric(t, "flowguard_exporter_sequence_lost_total"); lost != 0 {
				t.Errorf("%v flows lost by sequence numbers", lost)
			}
			d.stop(t)
			// softflowd meters the capture as flowguard's meter does: the
			// same number of flows (see ingest/pcap's softflowd check).
			if flows != 4026 {
				t.Errorf("engine saw %v flows, want the capture's 4026", flows)
			}
			var got map[string]any
			for _, a := range alertsOf(t, d.stdout.Bytes()) {
				if a["rule"] == "vertical-port-scan" {
					got = a
				}
			}
			if got == nil {
				t.Fatalf("no scan alert from run; stderr:\n%s", d.stderr.String())
			}
			for _, k := range []string{"rule", "value", "threshold", "window"} {
				if fmt.Sprint(got[k]) != fmt.Sprint(want[k]) {
					t.Errorf("%s: run %v, replay %v", k, got[k], want[k])
				}
			}
			if fmt.Sprint(group(got)) != fmt.Sprint(group(want)) {
				t.Errorf("group: run %v, replay %v", group(got), group(want))
			}
			// softflowd stamps the capture's times of two days ago; live,
			// the engine places a source whose clock is that far off on
			// the collector's clock (the receive times).
			if at, err := time.Parse(time.RFC3339Nano, got["fired_at"].(string)); err != nil ||
				at.Before(started.Add(-time.Minute)) || at.After(time.Now().Add(time.Minute)) {
				t.Errorf("fired_at %v is not on the collector's clock (test started %v)", got["fired_at"], started)
			}
		})
	}
}
