package alertmanager

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/freeport"
)

// lookTool finds a program the tests need (from the Debian package
// pkg): skips without it, but fails in CI (CI set), which installs it.
func lookTool(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (Debian: %s)", strings.Join(names, " or "), pkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// amProc is a real Alertmanager on a free loopback port, with its own
// storage and clustering off; stop and start keep port and storage, as
// a restart does.
type amProc struct {
	t       *testing.T
	bin     string
	args    []string
	base    string // http(s)://127.0.0.1:port
	client  *http.Client
	user    string
	pass    string
	logPath string
	cmd     *exec.Cmd
}

const minimalAMConfig = "route: {receiver: \"null\", group_wait: 1s, group_interval: 1s}\nreceivers: [{name: \"null\"}]\n"

// startAM starts Alertmanager with config (alertmanager.yml text) and,
// when webConfig is not empty, --web.config.file (TLS, basic auth).
func startAM(t *testing.T, config, webConfig string) *amProc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeport.Get(t, "tcp")
	a := &amProc{
		t: t, bin: lookTool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"),
		base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 5 * time.Second},
		logPath: filepath.Join(dir, "alertmanager.log"),
		args: []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--cluster.listen-address=", "--log.level=warn"},
	}
	if webConfig != "" {
		wc := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(wc, []byte(webConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		a.args = append(a.args, "--web.config.file="+wc)
	}
	t.Cleanup(func() {
		if a.cmd != nil {
			a.cmd.Process.Kill()
			a.cmd.Wait()
		}
	})
	return a
}

// useTLS switches the test's own client to https with the CA in caFile.
func (a *amProc) useTLS(caFile string) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		a.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	a.base = strings.Replace(a.base, "http://", "https://", 1)
	a.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
}

func (a *amProc) start() {
	a.t.Helper()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logf.Close()
	a.cmd = exec.Command(a.bin, a.args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	for i := 0; ; i++ {
		req, _ := http.NewRequest(http.MethodGet, a.base+"/-/ready", nil)
		if a.user != "" {
			req.SetBasicAuth(a.user, a.pass)
		}
		resp, err := a.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if i > 200 {
			log, _ := os.ReadFile(a.logPath)
			a.t.Fatalf("alertmanager did not come up: %v\n%s", err, log)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (a *amProc) stop() {
	a.t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	a.cmd.Wait()
	a.cmd = nil
}

// gettable is what GET /api/v2/alerts and `amtool alert query -o json`
// return for one alert.
type gettable struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

// alerts asks the API for the alerts matching the matchers, in every
// state (active, silenced, inhibited); resolved ones are not listed.
func (a *amProc) alerts(matchers ...string) []gettable {
	a.t.Helper()
	q := url.Values{"filter": matchers}
	req, _ := http.NewRequest(http.MethodGet, a.base+"/api/v2/alerts?"+q.Encode(), nil)
	if a.user != "" {
		req.SetBasicAuth(a.user, a.pass)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []gettable
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		a.t.Fatalf("GET alerts: %s: %v", resp.Status, err)
	}
	return out
}

// amtool runs amtool against this Alertmanager.
func (a *amProc) amtool(args ...string) []byte {
	a.t.Helper()
	bin := lookTool(a.t, "prometheus-alertmanager", "amtool")
	out, err := exec.Command("timeout", append([]string{"30", bin, "--alertmanager.url=" + a.base}, args...)...).Output()
	if err != nil {
		a.t.Fatalf("amtool %v: %v\n%s", args, err, out)
	}
	return out
}

// query is `amtool alert query -o json [flags] matchers...`.
func (a *amProc) query(args ...string) []gettable {
	a.t.Helper()
	var out []gettable
	b := a.amtool(append([]string{"alert", "query", "-o", "json"}, args...)...)
	if err := json.Unmarshal(b, &out); err != nil {
		a.t.Fatalf("amtool alert query: %v: %s", err, b)
	}
	return out
}

// waitFor polls cond every 50ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logOf returns what Alertmanager logged, for failure messages.
func (a *amProc) logOf() string {
	b, _ := os.ReadFile(a.logPath)
	return string(bytes.TrimSpace(b))
}
