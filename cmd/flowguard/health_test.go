package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/daemon"
)

type healthAnswer struct {
	code   int
	Status string                        `json:"status"`
	Checks map[string]daemon.HealthCheck `json:"checks"`
	Ready  *bool                         `json:"ready"`
}

func getHealth(t *testing.T, url string) healthAnswer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h healthAnswer
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s: not JSON: %q", url, b)
	}
	h.code = resp.StatusCode
	return h
}

// waitHealth polls /healthz until check has status want.
func waitHealth(t *testing.T, d *daemonProc, check, want string) healthAnswer {
	t.Helper()
	var h healthAnswer
	for range 200 {
		h = getHealth(t, "http://"+d.http+"/healthz")
		if h.Checks[check].Status == want {
			return h
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("/healthz %s: %+v, want %s", check, h, want)
	return h
}

// /readyz and /healthz answer from the components' state: ready once
// started; healthy with Redis up; degraded (still 200) while Redis is
// away; failing (503) when a reload leaves a listener unbound.
func TestDaemonHealth(t *testing.T) {
	redisAddr, redis := startRedisProc(t)
	d := startDaemon(t, "store: redis://"+redisAddr+"/0\nreload: {watch: 0s}\n")

	r := getHealth(t, "http://"+d.http+"/readyz")
	if r.code != 200 || r.Ready == nil || !*r.Ready {
		t.Fatalf("/readyz: %+v", r)
	}
	h := getHealth(t, "http://"+d.http+"/healthz")
	if h.code != 200 || h.Status != daemon.HealthOK {
		t.Fatalf("/healthz at start: %+v", h)
	}
	for _, c := range []string{"listeners", "pipeline", "notifiers", "store"} {
		if h.Checks[c].Status != daemon.HealthOK {
			t.Errorf("check %s: %+v", c, h.Checks[c])
		}
	}
	if h.Checks["store"].Detail != "redis connected" {
		t.Errorf("store: %+v", h.Checks["store"])
	}
	if v := d.metric(t, "flowguard_redis_connected"); v != 1 {
		t.Errorf("flowguard_redis_connected %v, want 1", v)
	}

	// Redis goes away: degraded, still 200 (the engine keeps windows locally).
	redis.Process.Kill()
	redis.Wait()
	sendFlows(t, d, 50) // updates to flush, so the store finds out
	h = waitHealth(t, d, "store", daemon.HealthDegraded)
	if h.code != 200 || h.Status != daemon.HealthDegraded {
		t.Errorf("/healthz without Redis: %+v, want 200 degraded", h)
	}
	if c, o := d.metric(t, "flowguard_redis_connected"), d.metric(t, "flowguard_redis_outages_total"); c != 0 || o != 1 {
		t.Errorf("without Redis: flowguard_redis_connected %v, _outages_total %v; want 0 and 1", c, o)
	}

	// A reload moves the listener to a port someone else holds.
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	os.WriteFile(d.cfg, []byte(fmt.Sprintf("listen:\n  - {name: export, address: %q}\nhttp: {listen: %q}\n"+
		"store: redis://%s/0\nreload: {watch: 0s}\n", taken.LocalAddr().String(), d.http, redisAddr)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	h = waitHealth(t, d, "listeners", daemon.HealthFailing)
	if h.code != http.StatusServiceUnavailable || h.Status != daemon.HealthFailing || h.Checks["listeners"].Detail != "0 of 1 listeners running" {
		t.Errorf("/healthz with an unbound listener: %+v, want 503 failing", h)
	}
	d.stop(t)
}

// A webhook receiver that refuses connections: alerts wait in the
// spool and /healthz says which notifier is not delivering.
func TestDaemonHealthNotifierNotDelivering(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/hook"
	ln.Close() // nothing listens there now
	d := startDaemon(t, everyFlowConfig(t, url, t.TempDir(), ""))
	if n := sendFlows(t, d, 20); n == 0 {
		t.Fatal("no alert emitted")
	}
	h := waitHealth(t, d, "notifiers", daemon.HealthDegraded)
	if h.code != 200 || h.Checks["notifiers"].Detail == "" {
		t.Errorf("/healthz: %+v", h)
	}
	t.Logf("notifiers: %s", h.Checks["notifiers"].Detail)
	d.cmd.Process.Signal(syscall.SIGKILL) // the spool keeps the alerts; no deadline to wait for
	d.cmd.Wait()
}

// Alerts that no route takes are counted in /metrics, not only in memory.
func TestDaemonUnroutedAlertsExported(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/every.yaml", []byte("rules:\n  - id: every-flow\n    severity: low\n    where: \"proto > 0\"\n"+
		"    group_by: [src_addr, dst_addr, src_port, dst_port, proto]\n"), 0o644)
	d := startDaemon(t, fmt.Sprintf("rules: [%q]\nnotifiers:\n  - {name: archive, type: file, path: %q}\n"+
		"routes:\n  - {min_severity: high, notifiers: [archive]}\n", dir, dir+"/alerts.jsonl"))
	emitted := sendFlows(t, d, 20)
	if emitted == 0 {
		t.Fatal("no alerts")
	}
	if v := d.metric(t, "flowguard_notifier_unrouted_total"); v != float64(emitted) {
		t.Errorf("flowguard_notifier_unrouted_total %v, want the %d low alerts", v, emitted)
	}
	if v := d.metric(t, "flowguard_notifier_rate_limited_total"); v != 0 {
		t.Errorf("flowguard_notifier_rate_limited_total %v without rate limits", v)
	}
	d.stop(t)
}
