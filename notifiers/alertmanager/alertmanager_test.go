package alertmanager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/web"
)

func sample(rule string, window string) *alert.Alert {
	now := time.Now().UTC().Truncate(time.Second)
	return &alert.Alert{
		ID: "a-" + rule, Rule: rule, Name: "Vertical port scan", Severity: "high", Tags: []string{"T1046", "scan"},
		Group: map[string]any{"src_addr": "198.51.100.23", "dst_addr": "10.0.0.9", "dst_port": 445},
		Value: 1543, Threshold: 100, Window: window,
		FirstSeen: now.Add(-20 * time.Second), LastSeen: now, FiredAt: now,
		Message:    "198.51.100.23 probed 1543 distinct ports",
		Enrichment: map[string]map[string]any{"src_addr": {"asn": 64500, "country": "US"}},
	}
}

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n, err := New("am", cfg, notifiers.Deps{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func config(urls ...string) Config {
	cfg := DefaultConfig()
	cfg.URLs = urls
	cfg.ResendInterval = notifiers.Duration(200 * time.Millisecond)
	cfg.Timeout = notifiers.Duration(2 * time.Second)
	return cfg
}

// An alert reaches a real Alertmanager with the rule's labels and the
// annotations, and is resolved there once its window has passed.
func TestLabelsAnnotationsAndResolve(t *testing.T) {
	am := startAM(t, minimalAMConfig, "")
	am.start()
	cfg := config(am.base)
	cfg.ExternalURL = "http://flowguard.test:8080/fg/"
	cfg.Labels = map[string]string{"source": "flowguard", "severity": "ignored: the alert's own wins"}
	n := newNotifier(t, cfg)
	a := sample("vertical-port-scan", "2s")
	sent := time.Now()
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	got := am.alerts(`alertname="vertical-port-scan"`)
	if len(got) != 1 {
		t.Fatalf("%d alerts in Alertmanager, want 1", len(got))
	}
	g := got[0]
	wantLabels := map[string]string{"alertname": "vertical-port-scan", "severity": "high", "tags": "T1046,scan",
		"src_addr": "198.51.100.23", "dst_addr": "10.0.0.9", "dst_port": "445", "source": "flowguard"}
	if !maps.Equal(g.Labels, wantLabels) {
		t.Errorf("labels %v\nwant   %v", g.Labels, wantLabels)
	}
	wantAnn := map[string]string{"summary": "Vertical port scan", "message": a.Message, "value": "1543", "threshold": "100",
		"window": "2s", "alert_id": "a-vertical-port-scan", "enrichment": "src_addr: asn=64500 country=US",
		"first_seen": a.FirstSeen.Format(time.RFC3339), "last_seen": a.LastSeen.Format(time.RFC3339), "fired_at": a.FiredAt.Format(time.RFC3339)}
	if !maps.Equal(g.Annotations, wantAnn) {
		t.Errorf("annotations %v\nwant        %v", g.Annotations, wantAnn)
	}
	if want := "http://flowguard.test:8080/fg/api/alerts?addr=10.0.0.9&rule=vertical-port-scan"; g.GeneratorURL != want {
		t.Errorf("generatorURL %q, want %q", g.GeneratorURL, want)
	}
	if !g.StartsAt.Equal(a.FirstSeen) || g.EndsAt.Before(sent.Add(2*time.Second-time.Millisecond)) || g.EndsAt.After(time.Now().Add(2*time.Second)) {
		t.Errorf("startsAt %v endsAt %v: want first_seen %v and about now + window", g.StartsAt, g.EndsAt, a.FirstSeen)
	}
	if g.Status.State != "active" {
		t.Errorf("state %q", g.Status.State)
	}
	waitFor(t, 5*time.Second, "alert not resolved in Alertmanager", func() bool {
		return len(am.alerts(`alertname="vertical-port-scan"`)) == 0
	})
	waitFor(t, 3*time.Second, "resolve not sent", func() bool { return n.Stats().Resolved == 1 })
	if st := n.Stats(); st.Active != 0 || st.Resent == 0 || st.RequestErrors != 0 {
		t.Errorf("stats %+v: want nothing active, re-sends made, no request errors", st)
	}
}

// An Alertmanager restart loses nothing: what it held comes back with
// the next re-send, and an alert sent while it is down fails retryably
// (the dispatcher retries or spools it).
func TestAlertmanagerRestart(t *testing.T) {
	am := startAM(t, minimalAMConfig, "")
	am.start()
	n := newNotifier(t, config(am.base))
	if err := n.Notify(context.Background(), sample("held", "1m")); err != nil {
		t.Fatal(err)
	}
	am.stop()
	err := n.Notify(context.Background(), sample("while-down", "1m"))
	if err == nil || notifiers.IsPermanent(err) {
		t.Fatalf("Notify while Alertmanager is down: %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "/api/v2") {
		t.Errorf("error shows the path: %v", err)
	}
	am.start()
	waitFor(t, 5*time.Second, "the alert held before the restart did not come back", func() bool {
		return len(am.alerts(`alertname="held"`)) == 1
	})
	if len(am.alerts(`alertname="while-down"`)) != 0 {
		t.Error("an alert whose Notify failed was re-sent by the notifier: retrying it is the dispatcher's job")
	}
}

// Every Alertmanager of a cluster gets every alert; one being down does
// not fail the delivery, and it gets the alerts when it is back.
func TestAllPeersOfACluster(t *testing.T) {
	am1 := startAM(t, minimalAMConfig, "")
	am2 := startAM(t, minimalAMConfig, "")
	am1.start()
	n := newNotifier(t, config(am1.base, am2.base+"/")) // am2 down
	if err := n.Notify(context.Background(), sample("peer", "1m")); err != nil {
		t.Fatalf("one Alertmanager of two accepted; Notify: %v", err)
	}
	if len(am1.alerts(`alertname="peer"`)) != 1 {
		t.Fatal("am1 does not have the alert")
	}
	am2.start()
	waitFor(t, 5*time.Second, "am2 did not get the alert when it came up", func() bool {
		return len(am2.alerts(`alertname="peer"`)) == 1
	})
	if st := n.Stats(); st.RequestErrors == 0 {
		t.Errorf("stats %+v: the requests to the stopped am2 were not counted as errors", st)
	}
}

// TLS with a private CA and basic auth, against Alertmanager's own web
// configuration; a wrong password is a permanent error that does not
// show the password.
func TestTLSAndBasicAuth(t *testing.T) {
	openssl := lookTool(t, "openssl", "openssl")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "am.crt"), filepath.Join(dir, "am.key")
	if out, err := exec.Command(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-days", "1", "-subj", "/CN=am.test", "-addext", "subjectAltName=IP:127.0.0.1",
		"-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	hash, err := web.HashPassword("s3cret-pass", 4)
	if err != nil {
		t.Fatal(err)
	}
	am := startAM(t, minimalAMConfig, fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  flowguard: %q\n", cert, key, hash))
	am.useTLS(cert)
	am.user, am.pass = "flowguard", "s3cret-pass"
	am.start()

	t.Setenv("FG_AM_PASS", "s3cret-pass")
	cfg := config(am.base)
	cfg.TLS.CAFile = cert
	cfg.BasicAuth = BasicAuth{Username: "flowguard", Password: "${FG_AM_PASS}"}
	if err := newNotifier(t, cfg).Notify(context.Background(), sample("tls", "1m")); err != nil {
		t.Fatal(err)
	}
	if len(am.alerts(`alertname="tls"`)) != 1 {
		t.Fatal("the alert did not arrive over TLS with basic auth")
	}

	t.Setenv("FG_AM_PASS", "wrong-pass")
	err = newNotifier(t, cfg).Notify(context.Background(), sample("tls-wrong", "1m"))
	if err == nil || !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("wrong password: %v, want a permanent 401 without the password", err)
	}
	cfg.TLS.CAFile = ""
	err = newNotifier(t, cfg).Notify(context.Background(), sample("tls-untrusted", "1m"))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
}

// A bearer token (from the environment) reaches the proxy that guards an
// Alertmanager; a refused token is permanent and never shown.
func TestBearerTokenThroughProxy(t *testing.T) {
	am := startAM(t, minimalAMConfig, "")
	am.start()
	target, _ := url.Parse(am.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	guard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123456" {
			http.Error(w, "bad token "+r.Header.Get("Authorization"), http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer guard.Close()
	t.Setenv("FG_AM_TOKEN", "tok-123456")
	cfg := config(guard.URL + "/am") // a route prefix
	cfg.BearerToken = "${FG_AM_TOKEN}"
	proxy.Director = func(r *http.Request) { // strip the prefix, as a real proxy's rewrite would
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/am")
	}
	if err := newNotifier(t, cfg).Notify(context.Background(), sample("bearer", "1m")); err != nil {
		t.Fatal(err)
	}
	if len(am.alerts(`alertname="bearer"`)) != 1 {
		t.Fatal("the alert did not pass the bearer-token proxy")
	}
	t.Setenv("FG_AM_TOKEN", "tok-wrong-99")
	err := newNotifier(t, cfg).Notify(context.Background(), sample("bearer-wrong", "1m"))
	if err == nil || !notifiers.IsPermanent(err) || strings.Contains(err.Error(), "tok-wrong-99") || !strings.Contains(err.Error(), "<redacted>") {
		t.Errorf("refused token: %v, want permanent, the echoed token redacted", err)
	}
}

// Hostile alerts (huge messages and group values, many at once) stay
// within max_value_bytes per value, max_batch_bytes and max_batch per
// request, and max_active kept alerts; each bound is counted.
func TestHostileAlertsBounded(t *testing.T) {
	am := startAM(t, minimalAMConfig, "")
	am.start()
	target, _ := url.Parse(am.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var sizes []int
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sizes = append(sizes, len(b))
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
		proxy.ServeHTTP(w, r)
	}))
	defer counting.Close()
	cfg := config(counting.URL)
	cfg.MaxValueBytes = 256
	cfg.MaxBatchBytes = 4096
	cfg.MaxBatch = 5
	cfg.MaxActive = 10
	n := newNotifier(t, cfg)
	var batch []*alert.Alert
	for i := range 40 {
		a := sample("hostile", "1m")
		a.Group = map[string]any{"src_addr": fmt.Sprintf("10.0.%d.1", i), "payload": strings.Repeat("é", 32<<10)}
		a.Message = strings.Repeat("x", 64<<10)
		batch = append(batch, a)
	}
	if err := n.Notify(context.Background(), batch...); err != nil {
		t.Fatal(err)
	}
	got := am.alerts(`alertname="hostile"`)
	if len(got) != 40 {
		t.Fatalf("%d hostile alerts in Alertmanager, want 40", len(got))
	}
	for _, g := range got {
		if len(g.Labels["payload"]) > 256 || !strings.HasSuffix(g.Labels["payload"], "…") || len(g.Annotations["message"]) > 256 {
			t.Fatalf("values not cut to 256 bytes: payload %d, message %d bytes", len(g.Labels["payload"]), len(g.Annotations["message"]))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 8 {
		t.Errorf("%d requests for 40 alerts with max_batch 5", len(sizes))
	}
	for _, s := range sizes {
		if s > 4096 {
			t.Errorf("a request of %d bytes, over max_batch_bytes 4096", s)
		}
	}
	st := n.Stats()
	if st.Truncated != 80 || st.Active != 10 || st.Evicted != 30 {
		t.Errorf("stats %+v: want 80 values cut, 10 kept, 30 evicted", st)
	}
}

// Configuration errors name the field; expanded secrets never appear.
func TestConfigErrors(t *testing.T) {
	t.Setenv("FG_SET", "topsecret-value")
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.URLs = nil }, "urls: must list at least one Alertmanager"},
		{func(c *Config) { c.URLs = []string{"am:9093"} }, "urls[0]: must be an absolute http:// or https:// URL"},
		{func(c *Config) { c.URLs = []string{"http://${FG_UNSET_VAR}/"} }, "urls[0]: environment variable FG_UNSET_VAR is not set"},
		{func(c *Config) { c.BasicAuth.Password = "${FG_SET}" }, "basic_auth.username: must be set with a password"},
		{func(c *Config) { c.BasicAuth.Username = "u"; c.BearerToken = "${FG_SET}" }, "bearer_token: basic_auth and bearer_token exclude each other"},
		{func(c *Config) { c.ResendInterval = 0 }, "resend_interval: must be > 0"},
		{func(c *Config) { c.ExternalURL = "flowguard:8080" }, "external_url: must be an absolute"},
		{func(c *Config) { c.Labels = map[string]string{"1x": "y"} }, `labels: "1x": a label name`},
		{func(c *Config) { c.MaxValueBytes = 1 << 20 }, "max_value_bytes: must be at most max_batch_bytes/8"},
		{func(c *Config) { c.TLS.CAFile = "/nonexistent/ca.pem" }, "tls.ca_file: open /nonexistent/ca.pem"},
	} {
		cfg := config("http://127.0.0.1:9093")
		c.edit(&cfg)
		_, err := New("am", cfg, notifiers.Deps{})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("error %v\nwant %q", err, c.want)
		}
	}
	t.Setenv("FG_AM_PREFIX", "tenant-7f3a9")
	if _, secrets, _ := parseEndpoint("https://am.example/${FG_AM_PREFIX}"); !slices.Contains(secrets, "/tenant-7f3a9") {
		t.Errorf("a path from the environment is not kept out of errors: %q", secrets)
	}
	for raw, want := range map[string]string{
		"http://am:9093":                     "http://am:9093/api/v2/alerts",
		"https://am.example/prefix/":         "https://am.example/prefix/api/v2/alerts",
		"http://am:9093/api/v2/alerts/":      "http://am:9093/api/v2/alerts",
		"http://u:p4ss@am:9093/alertmanager": "http://u:p4ss@am:9093/alertmanager/api/v2/alerts",
	} {
		ep, _, err := parseEndpoint(raw)
		if err != nil || ep.url != want {
			t.Errorf("%s: %q %v, want %q", raw, ep.url, err, want)
		}
	}
}

// The README's alertmanager.yml is the one tested here: Alertmanager
// accepts it and routes flowguard's alerts as the README says.
func TestRouteExample(t *testing.T) {
	amtool := lookTool(t, "prometheus-alertmanager", "amtool")
	example, err := os.ReadFile("testdata/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), string(example)) {
		t.Error("notifiers/README.md does not hold testdata/alertmanager.yml verbatim")
	}
	if out, err := exec.Command(amtool, "check-config", "testdata/alertmanager.yml").CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for labels, want := range map[string]string{
		"source=flowguard severity=high alertname=vertical-port-scan": "soc-pager",
		"source=flowguard severity=low alertname=dns-tunnel":          "soc-chat",
		"alertname=NodeDown": "default",
	} {
		out, err := exec.Command(amtool, append([]string{"config", "routes", "test", "--config.file=testdata/alertmanager.yml"}, strings.Fields(labels)...)...).Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s: routed to %q (%v), want %s", labels, out, err, want)
		}
	}
}

// A new alert of the same labels before the end extends the one in
// Alertmanager instead of resolving it; after the end, a new one starts
// a new episode.
func TestRefireExtends(t *testing.T) {
	am := startAM(t, minimalAMConfig, "")
	am.start()
	n := newNotifier(t, config(am.base))
	first := time.Now()
	if err := n.Notify(context.Background(), sample("refire", "1500ms")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := n.Notify(context.Background(), sample("refire", "1500ms")); err != nil {
		t.Fatal(err)
	}
	for time.Since(first) < 2*time.Second { // past the first alert's end
		time.Sleep(100 * time.Millisecond)
	}
	got := am.alerts(`alertname="refire"`)
	if len(got) != 1 || !got[0].EndsAt.After(first.Add(2*time.Second)) || n.Stats().Resolved != 0 {
		t.Fatalf("after the first end: %+v resolved %d, want one alert extended", got, n.Stats().Resolved)
	}
	waitFor(t, 4*time.Second, "the extended alert was not resolved", func() bool {
		return len(am.alerts(`alertname="refire"`)) == 0 && n.Stats().Resolved == 1
	})
	if err := n.Notify(context.Background(), sample("refire", "1m")); err != nil {
		t.Fatal(err)
	}
	if got := am.alerts(`alertname="refire"`); len(got) != 1 || got[0].Status.State != "active" {
		t.Fatalf("a new episode after the resolve: %+v", got)
	}
}

// What one alert costs to turn into a request body (no network).
func BenchmarkEncode(b *testing.B) {
	n, err := New("am", config("http://127.0.0.1:9093"), notifiers.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	a := sample("bench", "1m")
	b.ReportAllocs()
	for b.Loop() {
		p := postable{Labels: n.b.labels(a), Annotations: n.b.annotations(a), GeneratorURL: n.b.generatorURL(a), StartsAt: a.FirstSeen, EndsAt: a.FiredAt}
		if _, err := n.encode([]postable{p}); err != nil {
			b.Fatal(err)
		}
	}
}
