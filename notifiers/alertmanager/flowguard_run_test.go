package alertmanager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/freeport"
)

// scanRules are the bundled scan rules with short windows. The port scan
// stays firing in flowguard until later flows move its clock 2s
// (resolve_after) past the scan's window; the sweeps outlast the test.
const scanRules = `rules:
  - id: vertical-port-scan
    name: Vertical port scan
    severity: high
    tags: [T1046, scan]
    where: "tcp_syn_probe"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 12s
    resolve_after: 2s
    threshold: 100
    suppress: 10m
    message: "{src_addr} probed {value} distinct ports on {dst_addr} within {window}"
  - id: horizontal-host-sweep
    name: Horizontal host sweep
    severity: high
    tags: [T1046, scan]
    where: "tcp_syn_probe && dst_port in sweep_ports"
    distinct: dst_addr
    group_by: [src_addr, dst_port]
    window: 5m
    threshold: 50
    suppress: 15m
    message: "{src_addr} probed port {dst_port} on {value} hosts within {window}"
`

// flowguardBuilt tells TestMain whether a test asked for the binary.
var flowguardBuilt bool

// flowguardBinary builds cmd/flowguard once for this package's tests.
var flowguardBinary = sync.OnceValues(func() (string, error) {
	flowguardBuilt = true
	dir, err := os.MkdirTemp("", "flowguard-am-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "flowguard")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/flowguard/flowguard/cmd/flowguard").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// TestMain removes the flowguard binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if flowguardBuilt {
		if bin, err := flowguardBinary(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// flowguardRun is a running `flowguard run` with a UDP NetFlow listener.
type flowguardRun struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	udp    string
	http   string
}

func startFlowguard(t *testing.T, notifier string) *flowguardRun {
	t.Helper()
	bin, err := flowguardBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lists, err := os.ReadFile("../../examples/rules/lists.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "lists.yaml"), lists, 0o644)
	os.WriteFile(filepath.Join(dir, "scans.yaml"), []byte(scanRules), 0o644)
	f := &flowguardRun{udp: fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "udp")), http: fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp"))}
	cfg := fmt.Sprintf("listen:\n  - {name: export, address: %q}\nhttp: {listen: %q}\nrules: [%q, %q]\n%s",
		f.udp, f.http, filepath.Join(dir, "lists.yaml"), filepath.Join(dir, "scans.yaml"),
		strings.ReplaceAll(notifier, "FLOWGUARD_HTTP", f.http))
	cfgPath := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	f.cmd = exec.Command(bin, "run", "-c", cfgPath)
	f.cmd.Stderr = &f.stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f.cmd.ProcessState == nil {
			f.cmd.Process.Kill()
			f.cmd.Wait()
		}
	})
	waitFor(t, 10*time.Second, "flowguard did not come up", func() bool {
		resp, err := http.Get("http://" + f.http + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return f
}

// export sends a loopback capture to flowguard as NetFlow v9 with
// softflowd, bounded in time.
func (f *flowguardRun) export(t *testing.T, capture string) {
	t.Helper()
	sf := lookTool(t, "softflowd", "softflowd")
	pcap, _ := filepath.Abs(filepath.Join("..", "..", "testdata", capture))
	out, err := exec.Command("timeout", "30", sf, "-r", pcap, "-n", f.udp, "-v", "9", "-a", "-d",
		"-p", filepath.Join(t.TempDir(), "pid"), "-c", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd: %v\n%s", err, out)
	}
}

// metric sums a metric's samples from flowguard's /metrics.
func (f *flowguardRun) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + f.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, m := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? (\S+)$`).FindAllSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		sum += v
	}
	return sum
}

// alertStatus is the status of the newest alert of rule in flowguard's
// /api/alerts ("" when there is none).
func (f *flowguardRun) alertStatus(t *testing.T, rule string) string {
	t.Helper()
	resp, err := http.Get("http://" + f.http + "/api/alerts?rule=" + rule)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil || len(alerts) == 0 {
		return ""
	}
	return alerts[0].Status
}

// notifications records what Alertmanager sends its webhook receivers:
// receiver path, alert name and status.
type notifications struct {
	mu  sync.Mutex
	got []string
}

func (n *notifications) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg)
	n.mu.Lock()
	for _, a := range msg.Alerts {
		n.got = append(n.got, r.URL.Path+" "+a.Labels["alertname"]+" "+a.Status)
	}
	n.mu.Unlock()
}

func (n *notifications) has(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.got {
		if g == s {
			return true
		}
	}
	return false
}

// A scan sent to `flowguard run` as NetFlow reaches a real Alertmanager
// (the README's routing) with its labels within 5s; a silence made with
// amtool suppresses it; it is resolved once the group is quiet for its
// window, and the on-call receiver hears both. With Alertmanager
// stopped, new alerts wait (retries, spool) and arrive when it is back;
// a second restart loses nothing either (re-sends). While flowguard has
// the scan firing it stays active in Alertmanager past its window (its
// endsAt moves on with each re-send); it is resolved there once flowguard
// resolves it (later flows move flowguard's clock past resolve_after).
func TestFlowguardRunToAlertmanager(t *testing.T) {
	lookTool(t, "softflowd", "softflowd")
	lookTool(t, "prometheus-alertmanager", "amtool")
	rec := &notifications{}
	receiver := httptest.NewServer(rec)
	defer receiver.Close()
	example, err := os.ReadFile("testdata/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	amCfg := strings.NewReplacer("http://127.0.0.1:5001", receiver.URL, "group_wait: 10s", "group_wait: 1s",
		"group_interval: 1m", "group_interval: 1s").Replace(string(example))
	am := startAM(t, amCfg, "")
	am.start()
	spool := t.TempDir()
	fg := startFlowguard(t, fmt.Sprintf(`notifiers:
  - name: am
    type: alertmanager
    urls: [%q]
    resend_interval: 1s
    external_url: http://FLOWGUARD_HTTP
    labels: {source: flowguard}
    delivery:
      spool_dir: %q
      retry: {initial: 100ms, max: 500ms}
`, am.base, spool))

	fg.export(t, "portscan.pcap")
	exported := time.Now()
	var scan []gettable
	waitFor(t, 5*time.Second, "the scan is not in `amtool alert query` within 5s", func() bool {
		scan = am.query("alertname=vertical-port-scan")
		return len(scan) == 1
	})
	t.Logf("the scan reached Alertmanager %v after softflowd ended", time.Since(exported).Round(time.Millisecond))
	want := map[string]string{"alertname": "vertical-port-scan", "severity": "high", "tags": "T1046,scan",
		"src_addr": "127.0.0.5", "dst_addr": "127.0.0.9", "source": "flowguard"}
	for k, v := range want {
		if scan[0].Labels[k] != v {
			t.Errorf("label %s=%q, want %q (labels %v)", k, scan[0].Labels[k], v, scan[0].Labels)
		}
	}
	if len(scan[0].Labels) != len(want) {
		t.Errorf("labels %v, want exactly %v", scan[0].Labels, want)
	}
	// generatorURL opens the alert in flowguard's API.
	resp, err := http.Get(scan[0].GeneratorURL)
	if err != nil {
		t.Fatal(err)
	}
	var linked []map[string]any
	json.NewDecoder(resp.Body).Decode(&linked)
	resp.Body.Close()
	if len(linked) != 1 || linked[0]["id"] != scan[0].Annotations["alert_id"] {
		t.Errorf("generatorURL %s gives %d alerts, want the one with id %s", scan[0].GeneratorURL, len(linked), scan[0].Annotations["alert_id"])
	}

	// A silence made with amtool suppresses it; expired, it is active again.
	id := strings.TrimSpace(string(am.amtool("silence", "add", "alertname=vertical-port-scan", "-c", "test", "-d", "1h")))
	if n := len(am.query("alertname=vertical-port-scan")); n != 0 {
		t.Errorf("silenced alert still listed as active (%d)", n)
	}
	silenced := am.query("--silenced", "alertname=vertical-port-scan")
	if len(silenced) != 1 || silenced[0].Status.State != "suppressed" || len(silenced[0].Status.SilencedBy) != 1 || silenced[0].Status.SilencedBy[0] != id {
		t.Errorf("after `amtool silence add`: %+v, want suppressed by %s", silenced, id)
	}
	am.amtool("silence", "expire", id)
	if len(am.query("alertname=vertical-port-scan")) != 1 {
		t.Error("not active again after the silence expired")
	}

	// The group goes quiet, but flowguard's clock (event time) stands
	// still: the scan is firing there, and stays active in Alertmanager
	// past fired_at + window (12s), its endsAt ahead.
	for time.Since(exported) < 14*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	if got := am.query("alertname=vertical-port-scan"); len(got) != 1 || !got[0].EndsAt.After(time.Now()) {
		t.Errorf("%v after the scan, past its window, while flowguard has it firing: %+v, want active with endsAt ahead", time.Since(exported).Round(time.Second), got)
	}
	if st := fg.alertStatus(t, "vertical-port-scan"); st != "firing" {
		t.Errorf("flowguard's scan is %q, want firing", st)
	}
	if rec.has("/page vertical-port-scan resolved") || fg.metric(t, "flowguard_alertmanager_resolved_total") != 0 {
		t.Errorf("resolved before flowguard resolved it: %v", rec.got)
	}

	// Later flows move flowguard's clock past the scan's resolve_after:
	// flowguard resolves it, and so does Alertmanager, at once.
	// The clock follows the flows' receive times (the captures' stamps are
	// days old): normal.pcap is sent until it is far enough.
	for deadline := time.Now().Add(20 * time.Second); fg.alertStatus(t, "vertical-port-scan") != "resolved"; {
		if time.Now().After(deadline) {
			t.Fatal("flowguard did not resolve the scan")
		}
		fg.export(t, "normal.pcap")
		time.Sleep(time.Second)
	}
	waitFor(t, 5*time.Second, "the scan was not resolved in Alertmanager after flowguard resolved it", func() bool {
		return len(am.query("--silenced", "--inhibited", "--active", "alertname=vertical-port-scan")) == 0
	})
	waitFor(t, 5*time.Second, "the receiver did not hear the scan resolved: "+fmt.Sprint(rec.got), func() bool {
		return rec.has("/page vertical-port-scan resolved")
	})
	if r := fg.metric(t, "flowguard_alertmanager_resolved_total"); r != 1 {
		t.Errorf("flowguard_alertmanager_resolved_total %v, want 1 (the scan)", r)
	}

	// Alertmanager down: the sweeps wait and arrive when it is back.
	am.stop()
	fg.export(t, "hostsweep.pcap")
	waitFor(t, 10*time.Second, "no failed attempt while Alertmanager was down", func() bool {
		return fg.metric(t, "flowguard_notifier_retried_total") > 0
	})
	if sp := fg.metric(t, "flowguard_notifier_spooled"); sp < 1 {
		t.Errorf("flowguard_notifier_spooled %v while Alertmanager is down", sp)
	}
	am.start()
	waitFor(t, 10*time.Second, "the sweeps did not arrive after Alertmanager came back", func() bool {
		return len(am.query("alertname=horizontal-host-sweep")) == 3
	})
	waitFor(t, 5*time.Second, "the spool was not emptied", func() bool {
		return fg.metric(t, "flowguard_notifier_spooled") == 0
	})
	am.stop()
	am.start()
	waitFor(t, 5*time.Second, "the sweeps did not come back after a second restart", func() bool {
		return len(am.query("alertname=horizontal-host-sweep")) == 3
	})
	if d, f := fg.metric(t, "flowguard_notifier_dropped_total"), fg.metric(t, "flowguard_notifier_failed_total"); d != 0 || f != 0 {
		t.Errorf("dropped %v failed %v, want none", d, f)
	}
	if a, e, r := fg.metric(t, "flowguard_alertmanager_active"), fg.metric(t, "flowguard_alertmanager_request_errors_total"),
		fg.metric(t, "flowguard_alertmanager_resent_total"); a != 3 || e == 0 || r == 0 {
		t.Errorf("flowguard_alertmanager_active %v request_errors %v resent %v: want 3 active, the outage's errors, re-sends", a, e, r)
	}
	fg.cmd.Process.Signal(syscall.SIGTERM)
	if err := fg.cmd.Wait(); err != nil {
		t.Fatalf("flowguard exit: %v\n%s", err, fg.stderr.String())
	}
}
