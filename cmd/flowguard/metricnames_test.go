package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateMetricNames = flag.Bool("update-metric-names", false, "rewrite testdata/metric_names.txt from a running daemon")

// The full set of metric names and their label names on /metrics, with a
// Redis store, an alertmanager and a webhook notifier, and an exporter
// sending: the same as testdata/metric_names.txt, written from the daemon
// as it was before its metrics were split among its components.
func TestMetricNamesUnchanged(t *testing.T) {
	redisAddr := startRedis(t)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer recv.Close()
	d := startDaemon(t, fmt.Sprintf(`store: {redis: {url: "redis://%s/0"}}
notifiers:
  - {name: hook, type: webhook, url: %q, format: json}
  - {name: am, type: alertmanager, urls: [%q]}
`, redisAddr, recv.URL, recv.URL))
	exportV5(t, d, "127.0.0.1:0", probes("198.51.100.7", "10.0.0.1", 5), 0)
	d.waitMetric(t, "flowguard_engine_flows_total", 5)
	time.Sleep(100 * time.Millisecond)
	got := metricNames(d.scrape(t))
	d.stop(t)

	path := filepath.Join("testdata", "metric_names.txt")
	if *updateMetricNames {
		os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(b))
	for _, n := range want {
		if !slices.Contains(got, n) {
			t.Errorf("missing on /metrics: %s", n)
		}
	}
	for _, n := range got {
		if !slices.Contains(want, n) {
			t.Errorf("new on /metrics: %s", n)
		}
	}
}

// metricNames returns each flowguard sample's name and label names, as
// "name{a,b}", sorted and unique.
func metricNames(body []byte) []string {
	seen := map[string]bool{}
	s := bufio.NewScanner(bytes.NewReader(body))
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "flowguard_") {
			continue
		}
		name, rest, _ := strings.Cut(strings.Fields(line)[0], "{")
		var labels []string
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok {
				labels = append(labels, k)
			}
		}
		slices.Sort(labels)
		seen[name+"{"+strings.Join(labels, ",")+"}"] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
