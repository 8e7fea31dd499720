package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/internal/freeport"
)

// getJSON decodes a GET's JSON answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// scrapeMetric reads the first sample of a metric (name, optionally with
// labels as they are written, such as `x{notifier="a"}`) from the
// daemon's /metrics at addr; -1 when there is none.
func scrapeMetric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if !strings.ContainsAny(name, "{") && strings.HasPrefix(rest, "{") {
			rest = rest[strings.Index(rest, "}")+1:]
		}
		if !strings.HasPrefix(rest, " ") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return v
	}
	return -1
}

// testDaemon is a Daemon run in the test process.
type testDaemon struct {
	*Daemon
	http string // the API's address
	udp  int    // the listener's port
	cfg  string // the config file
}

// runDaemon writes a config of one listener named "in" on a free loopback
// port, the API on another, and extra; builds the daemon from it and runs
// it until the test ends.
func runDaemon(t *testing.T, extra string) *testDaemon {
	t.Helper()
	return runDaemonWith(t, extra, nil)
}

// runDaemonWith is runDaemon that hands the daemon to setup between New
// and Run.
func runDaemonWith(t *testing.T, extra string, setup func(*Daemon)) *testDaemon {
	t.Helper()
	td := newTestDaemon(t)
	td.writeConfig(t, extra)
	t.Cleanup(td.start(t, setup))
	return td
}

// newTestDaemon picks the ports and the config file of a test daemon.
func newTestDaemon(t *testing.T) *testDaemon {
	return &testDaemon{udp: freeport.Get(t, "udp"), http: fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp")),
		cfg: filepath.Join(t.TempDir(), "flowguard.yaml")}
}

// start builds the daemon from td's config file, hands it to setup (when
// not nil), runs it, and waits for its API; the returned func stops it.
func (td *testDaemon) start(t *testing.T, setup func(*Daemon)) (stop func()) {
	t.Helper()
	cfg, err := config.Load(td.cfg)
	if err != nil {
		t.Fatal(err)
	}
	td.Daemon, err = New(cfg, Options{ConfigPath: td.cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(td.Daemon)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- td.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}
	for i := 0; scrapeMetricErr(td.http) != nil; i++ {
		if i > 200 {
			stop()
			t.Fatal("the daemon's API did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

// writeConfig (re)writes the config file: the listener, the API, extra.
func (td *testDaemon) writeConfig(t *testing.T, extra string) {
	t.Helper()
	body := fmt.Sprintf("listen:\n  - {name: in, address: \"127.0.0.1:%d\"}\nhttp: {listen: %q}\n%s", td.udp, td.http, extra)
	if err := os.WriteFile(td.cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// send sends datagram p to the listener from the loopback address from.
func (td *testDaemon) send(t *testing.T, from string, p []byte) {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: td.udp})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
}

// waitMetric polls /metrics until name reaches want (10 s at most).
func (td *testDaemon) waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	for i := 0; ; i++ {
		v := scrapeMetric(t, td.http, name)
		if v >= want {
			return
		}
		if i > 500 {
			t.Fatalf("%s %v, want %v", name, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrapeMetricErr(addr string) error {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err == nil {
		resp.Body.Close()
	}
	return err
}
