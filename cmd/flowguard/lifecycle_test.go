package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowguard/flowguard/alert"
)

// fired keeps the first notification of each alert (its crossing) from a
// replay's or a daemon's output, which also holds the escalations and
// resolutions of the same alerts (README "Alert lifecycle").
func fired(alerts []map[string]any) []map[string]any {
	var out []map[string]any
	for _, a := range alerts {
		if a["status"] == "firing" && a["notifications"] == float64(1) {
			out = append(out, a)
		}
	}
	return out
}

// The daemon's silences: changed only by an authenticated user from the
// same origin (401 without or with wrong credentials, 403 cross-site); a
// silenced scan is in /api/alerts, marked, and reaches no notifier while
// another scan does; a restart keeps the silence.
func TestDaemonSilences(t *testing.T) {
	var mu sync.Mutex
	var hooked []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooked = append(hooked, string(b))
		mu.Unlock()
	}))
	defer recv.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	auth := fmt.Sprintf(", basic_auth_users: {alice: %q}", hash)
	dataDir := t.TempDir()
	extra := fmt.Sprintf("data_dir: %q\nnotifiers:\n  - {name: hook, type: webhook, url: %q}\n", dataDir, recv.URL)
	d := startDaemonHTTP(t, auth, extra)
	base := "http://" + d.http

	call := func(method, path, body, user, pass string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	silence := `{"matchers": [{"name": "rule", "value": "vertical-port-scan"}, {"name": "group.src_addr", "value": "198.51.100.7"}],
		"ends_at": "` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `", "comment": "authorised scan"}`
	for _, c := range []struct {
		name string
		code int
		user string
		pass string
		hdr  []string
	}{
		{"no credentials", 401, "", "", []string{"X-Requested-With", "test"}},
		{"wrong password", 401, "alice", "nope", []string{"X-Requested-With", "test"}},
		{"cross-site", 403, "alice", "wonderland", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
	} {
		if code, body := call("POST", "/api/silences", silence, c.user, c.pass, c.hdr...); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.code)
		}
	}
	code, body := call("POST", "/api/silences", silence, "alice", "wonderland", "X-Requested-With", "test")
	var created struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(body), &created) != nil || created.ID == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := call("POST", "/api/silences", `{"matchers": [{"name": "src_addr", "value": "x"}], "ends_at": "2099-01-01T00:00:00Z", "comment": "c"}`,
		"alice", "wonderland", "X-Requested-With", "test"); code != 400 || !strings.Contains(body, "want rule, severity, tag or group.<field>") {
		t.Errorf("bad matcher: %d %s", code, body)
	}

	exportV5(t, d, "127.0.0.1:0", probes("198.51.100.7", "10.0.0.1", 150), 0) // silenced
	exportV5(t, d, "127.0.0.1:0", probes("198.51.100.8", "10.0.0.1", 150), 0) // not
	var list []alert.Alert
	for i := 0; ; i++ {
		_, body := call("GET", "/api/alerts?rule=vertical-port-scan", "", "alice", "wonderland")
		list = nil
		json.Unmarshal([]byte(body), &list)
		mu.Lock()
		n := len(hooked)
		mu.Unlock()
		if len(list) == 2 && n > 0 {
			break
		}
		if i > 100 {
			t.Fatalf("alerts %d, webhook %d: %s", len(list), n, d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, a := range list {
		silenced := len(a.SilencedBy) == 1 && a.SilencedBy[0] == created.ID && a.Notifications == 0
		if (a.Group["src_addr"] == "198.51.100.7") != silenced {
			t.Errorf("alert of %v: silenced_by %v, notifications %d", a.Group["src_addr"], a.SilencedBy, a.Notifications)
		}
	}
	time.Sleep(200 * time.Millisecond) // the silenced one would have come first
	mu.Lock()
	for _, h := range hooked {
		if strings.Contains(h, "198.51.100.7") {
			t.Errorf("the webhook got the silenced alert: %.200s", h)
		}
	}
	mu.Unlock()
	if _, metrics := call("GET", "/metrics", "", "alice", "wonderland"); !strings.Contains(metrics, "\nflowguard_alerts_silenced_total 1\n") {
		t.Errorf("flowguard_alerts_silenced_total is not 1 on /metrics")
	}
	d.stop(t)

	d = startDaemonHTTP(t, auth, extra)
	base = "http://" + d.http
	code, body = call("GET", "/api/silences", "", "alice", "wonderland")
	var sils []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &sils) != nil || len(sils) != 1 || sils[0]["id"] != created.ID ||
		sils[0]["status"] != "active" || sils[0]["created_by"] != "alice" {
		t.Fatalf("after a restart: %d %s", code, body)
	}
	if code, _ := call("DELETE", "/api/silences/"+created.ID, "", "alice", "wonderland", "X-Requested-With", "test"); code != 200 {
		t.Errorf("expire: %d", code)
	}
	d.stop(t)
}
