package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/pcap"
	"github.com/flowguard/flowguard/internal/lockedbuf"
)

// Exporters with their own clocks, made of real softflowd exports. softflowd
// reading a file takes flow times from the packets, and with -a its export
// header times too: its whole clock is the capture's. (Under faketime
// without -a only the header moves while the flows keep the packets'
// times, an exporter no router is; with -a faketime changes nothing.) So
// an exporter whose clock is off by D is softflowd -a over the capture
// shifted (editcap -t) to end D away from now.

// needTools skips (or, in CI, fails) when a tool is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// shiftedCapture copies testdata/NAME with its packet times moved so that
// its last packet is at end.
func shiftedCapture(t *testing.T, name string, end time.Time) string {
	t.Helper()
	src := filepath.Join("..", "..", "testdata", name)
	r, err := pcap.Open(src, pcap.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	last := r.Stats().Last
	r.Close()
	// softflowd cuts its -r path to 16 characters (see
	// ingest/netflow/testdata/README.md): a short name in a short folder.
	dir, err := os.MkdirTemp("/tmp", "fgc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dst := filepath.Join(dir, "in.pcap")
	shift := end.Sub(last).Seconds()
	if out, err := exec.Command("editcap", "-t", strconv.FormatFloat(shift, 'f', 6, 64), src, dst).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, out)
	}
	return dst
}

// softflowdExport runs softflowd -a over a capture, exporting NetFlow v9
// to 127.0.0.1:port, and returns once it has sent everything.
func softflowdExport(t *testing.T, capture string, port int) {
	t.Helper()
	needTools(t, "softflowd")
	out, err := exec.Command("timeout", "30", "softflowd", "-r", capture, "-n", fmt.Sprintf("127.0.0.1:%d", port),
		"-v", "9", "-a", "-d", "-p", filepath.Join(t.TempDir(), "pid"), "-c", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd: %v\n%s", err, out)
	}
}

// relayFrom forwards every datagram sent to the returned port on to
// 127.0.0.1:dst from a socket bound to the loopback address from: an
// exporter at another address (softflowd sends from 127.0.0.1 only).
func relayFrom(t *testing.T, from string, dst int) int {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: dst})
	if err != nil {
		in.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return // closed by the cleanup
			}
			out.Write(buf[:n])
		}
	}()
	t.Cleanup(func() { in.Close(); <-done; out.Close() })
	return in.LocalAddr().(*net.UDPAddr).Port
}

// waitFlows waits until the engine has evaluated n flows.
func waitFlows(t *testing.T, d *daemonProc, n float64) {
	t.Helper()
	var got float64
	for range 200 {
		if got = d.metric(t, "flowguard_engine_flows_total"); got >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the engine evaluated %v flows, want %v; stderr:\n%s", got, n, d.stderr.String())
}

// exporterMetric reads a per-exporter sample of /metrics.
func exporterMetric(t *testing.T, d *daemonProc, name, exporter string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{[^}]*exporter="` + regexp.QuoteMeta(exporter) + `"[^}]*\} (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v, true
}

// apiSkew reads an exporter's clock_skew_seconds from /api/exporters.
func apiSkew(t *testing.T, d *daemonProc, exporter string) (float64, bool) {
	t.Helper()
	var rows []map[string]any
	getJSON(t, "http://"+d.http+"/api/exporters", &rows)
	for _, r := range rows {
		if r["exporter"] == exporter {
			v, ok := r["clock_skew_seconds"].(float64)
			return v, ok
		}
	}
	return 0, false
}

// skewLogs counts the log lines warning that an exporter's clock is off.
func skewLogs(d *daemonProc, exporter string) int {
	n := 0
	for _, line := range strings.Split(d.stderr.String(), "\n") {
		if strings.Contains(line, "exporter clock skewed") && strings.Contains(line, "exporter="+exporter+" ") {
			n++
		}
	}
	return n
}

// alertFacts keeps what an alert says about the traffic, without the
// times of the run.
func alertFacts(alerts []map[string]any) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, fmt.Sprint(a["rule"], group(a), a["value"], a["threshold"], a["window"], a["sampling_rate"]))
	}
	return out
}

// Two exporters with different clocks: the port scan from a well-clocked
// exporter (127.0.0.1), ordinary traffic from one whose clock is two days
// ahead (127.0.0.2), sent first. The scan alerts exactly as when the
// well-clocked exporter is alone; the skew of the second is in /metrics,
// /api/exporters and one log line; the first is reported as on time.
func TestTwoExporterClocks(t *testing.T) {
	needTools(t, "softflowd", "editcap")
	cfg := "reload: {watch: 0s}\n"

	alone := startDaemon(t, cfg)
	softflowdExport(t, shiftedCapture(t, "portscan.pcap", time.Now()), alone.udp)
	waitFlows(t, alone, 4026)
	alone.stop(t)
	want := alertFacts(alertsOf(t, alone.stdout.Bytes()))
	if len(want) == 0 || !strings.Contains(strings.Join(want, "\n"), "vertical-port-scan") {
		t.Fatalf("the well-clocked exporter alone raised no scan alert: %v", want)
	}

	d := startDaemon(t, cfg)
	ahead := shiftedCapture(t, "normal.pcap", time.Now().Add(48*time.Hour))
	softflowdExport(t, ahead, relayFrom(t, "127.0.0.2", d.udp))
	var normal float64
	for range 200 { // every flow of the ordinary traffic is in before the scan
		if normal = d.metric(t, "flowguard_engine_flows_total"); normal > 0 && normal == d.metric(t, "flowguard_listener_flows_total") &&
			d.metric(t, "flowguard_listener_datagrams_total") > 0 {
			time.Sleep(100 * time.Millisecond)
			if normal == d.metric(t, "flowguard_engine_flows_total") {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if normal == 0 {
		t.Fatal("no flows from the exporter two days ahead")
	}
	softflowdExport(t, shiftedCapture(t, "portscan.pcap", time.Now()), d.udp)
	waitFlows(t, d, normal+4026)

	skew, ok := exporterMetric(t, d, "flowguard_exporter_clock_skew_seconds", "127.0.0.2")
	if !ok || skew < 47*3600 || skew > 48*3600+60 {
		t.Errorf("flowguard_exporter_clock_skew_seconds of 127.0.0.2: %v (present %v), want about two days", skew, ok)
	}
	if skew, ok := exporterMetric(t, d, "flowguard_exporter_clock_skew_seconds", "127.0.0.1"); !ok || skew < -60 || skew > 2 {
		t.Errorf("flowguard_exporter_clock_skew_seconds of 127.0.0.1: %v (present %v), want about 0", skew, ok)
	}
	if s, ok := apiSkew(t, d, "127.0.0.2"); !ok || s < 47*3600 {
		t.Errorf("/api/exporters clock_skew_seconds of 127.0.0.2: %v (present %v)", s, ok)
	}
	d.stop(t)
	if got := alertFacts(alertsOf(t, d.stdout.Bytes())); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts with an exporter two days ahead:\n%s\nwant (the well-clocked exporter alone):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := skewLogs(d, "127.0.0.2"); n != 1 {
		t.Errorf("%d skew warnings for 127.0.0.2, want 1; stderr:\n%s", n, d.stderr.String())
	}
	if n := skewLogs(d, "127.0.0.1"); n != 0 {
		t.Errorf("%d skew warnings for the well-clocked 127.0.0.1", n)
	}
}

// An exporter ten minutes ahead or behind: detected (metric, API, one log
// line) and its scan still alerts, on the collector's clock.
func TestExporterSkewTenMinutes(t *testing.T) {
	needTools(t, "softflowd", "editcap")
	for _, skew := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			d := startDaemon(t, "reload: {watch: 0s}\n")
			sent := time.Now()
			softflowdExport(t, shiftedCapture(t, "portscan.pcap", sent.Add(skew)), d.udp)
			waitFlows(t, d, 4026)
			// softflowd -a stamps each header with the last packet read,
			// up to the capture's 8 s before its end.
			lo, hi := skew.Seconds()-15, skew.Seconds()+2
			if v, ok := exporterMetric(t, d, "flowguard_exporter_clock_skew_seconds", "127.0.0.1"); !ok || v < lo || v > hi {
				t.Errorf("flowguard_exporter_clock_skew_seconds %v (present %v), want within [%v, %v]", v, ok, lo, hi)
			}
			if v, ok := apiSkew(t, d, "127.0.0.1"); !ok || v < lo || v > hi {
				t.Errorf("/api/exporters clock_skew_seconds %v (present %v)", v, ok)
			}
			d.stop(t)
			if n := skewLogs(d, "127.0.0.1"); n != 1 {
				t.Errorf("%d skew warnings, want 1; stderr:\n%s", n, d.stderr.String())
			}
			var scan map[string]any
			for _, a := range alertsOf(t, d.stdout.Bytes()) {
				if a["rule"] == "vertical-port-scan" {
					scan = a
				}
			}
			if scan == nil {
				t.Fatalf("no scan alert from the skewed exporter; stderr:\n%s", d.stderr.String())
			}
			fired, err := time.Parse(time.RFC3339Nano, scan["fired_at"].(string))
			if err != nil || fired.Before(sent.Add(-time.Minute)) || fired.After(time.Now()) {
				t.Errorf("fired_at %v is not on the collector's clock (sent at %v)", scan["fired_at"], sent)
			}
		})
	}
}

// tcpdumpLo records UDP datagrams to port on lo, with nanosecond times,
// until the returned function stops it.
func tcpdumpLo(t *testing.T, port int, path string) func() {
	t.Helper()
	needTools(t, "tcpdump")
	cmd := exec.Command("timeout", "60", "tcpdump", "-i", "lo", "-n", "-U", "--time-stamp-precision=nano",
		"-w", path, fmt.Sprintf("udp and dst port %d", port))
	var errb lockedbuf.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGINT) // timeout passes it on; tcpdump flushes and exits
		if err := cmd.Wait(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Errorf("tcpdump: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	for i := 0; !strings.Contains(errb.String(), "listening on"); i++ {
		if i > 200 {
			stop()
			t.Fatalf("tcpdump did not start: %s", errb.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	return stop
}

// capturedPackets counts the packets a capture being written holds so far.
func capturedPackets(t *testing.T, path string) uint64 {
	t.Helper()
	r, err := pcap.Open(path, pcap.Config{})
	if err != nil {
		return 0 // not even a file header yet
	}
	defer r.Close()
	r.Run(context.Background(), func([]flow.Flow) {}) // a record cut short at the end is an error: counted so far
	return r.Stats().Packets
}

// A softflowd export sent live to `flowguard run` and recorded on lo by
// tcpdump, then replayed with the same config, gives the same alert JSON,
// byte for byte: the replay takes the capture's packet times as receive
// times (the kernel's stamps the daemon used), corrects the exporter's
// clock (softflowd -a: the capture's, two days behind) the same way, and
// applies the config's sampling override as run does.
func TestReplayOfExportCaptureMatchesLive(t *testing.T) {
	needTools(t, "softflowd", "tcpdump")
	cfgText := "reload: {watch: 0s}\nsampling:\n  exporters:\n    127.0.0.1: 10\n"
	d := startDaemon(t, cfgText)
	capture := filepath.Join(t.TempDir(), "export.pcap")
	stop := tcpdumpLo(t, d.udp, capture)
	softflowdExport(t, filepath.Join("..", "..", "testdata", "portscan.pcap"), d.udp)
	waitFlows(t, d, 4026)
	// tcpdump stops without reading what the kernel still holds for it:
	// wait until it has written every datagram the daemon received.
	datagrams := d.metric(t, "flowguard_listener_datagrams_total")
	var recorded uint64
	for range 200 {
		if recorded = capturedPackets(t, capture); float64(recorded) >= datagrams {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	d.stop(t)
	if float64(recorded) != datagrams {
		t.Fatalf("tcpdump recorded %d datagrams, the daemon received %v", recorded, datagrams)
	}
	live := d.stdout.Bytes()
	if !bytes.Contains(live, []byte(`"rule":"vertical-port-scan"`)) || !bytes.Contains(live, []byte(`"sampling_rate":10`)) {
		t.Fatalf("the live run raised no sampled scan alert:\n%s\nstderr:\n%s", live, d.stderr.String())
	}
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "-c", d.cfg, "--format", "json", "-q", capture}, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errb.String())
	}
	if !bytes.Equal(out.Bytes(), live) {
		t.Errorf("replay of the capture differs from the live run\nlive:\n%s\nreplay:\n%s", live, out.Bytes())
	}
}
