package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/internal/freeport"
)

// A handler, a flow stage and an alert observer added between New and
// Run: the handler answers on the API's port, the stage sees every flow
// the listener decodes, the observer every alert.
func TestExtensionPoints(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "every.yaml"), []byte(`rules:
  - id: every-flow
    name: Every flow
    severity: low
    where: "proto > 0"
    group_by: [src_addr, dst_addr, dst_port]
`), 0o644)
	var flows atomic.Int64
	var mu sync.Mutex
	var alerts []string
	d := runDaemonWith(t, "rules: ["+filepath.Join(dir, "every.yaml")+"]\nnotifiers:\n  - {name: out, type: file, path: "+filepath.Join(dir, "alerts.jsonl")+"}\n",
		func(d *Daemon) {
			d.Handle("GET /api/hello", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
			d.ObserveFlows(func(b []flow.Flow) { flows.Add(int64(len(b))) })
			d.ObserveAlerts(func(a *alert.Alert) {
				mu.Lock()
				alerts = append(alerts, a.Rule)
				mu.Unlock()
			})
		})
	resp, err := http.Get("http://" + d.http + "/api/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("/api/hello: %d %q", resp.StatusCode, body)
	}

	d.send(t, "127.0.0.21", toyDatagram(4))
	d.waitMetric(t, "flowguard_alerts_total", 4)
	if n := flows.Load(); n != 4 {
		t.Errorf("the flow stage saw %d flows, want 4", n)
	}
	for i := 0; ; i++ {
		mu.Lock()
		n := len(alerts)
		mu.Unlock()
		if n == 4 {
			break
		}
		if i > 100 {
			t.Fatalf("the alert observer saw %d alerts, want 4", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if alerts[0] != "every-flow" {
		t.Errorf("alerts: %v", alerts)
	}
}

// A listener's batch through a flow stage to the engine queue: the stage
// adds nothing allocated per batch.
func BenchmarkHandleFlowsObserved(b *testing.B) {
	cfg, err := config.Load("")
	if err != nil {
		b.Fatal(err)
	}
	cfg.HTTP.Listen, cfg.Listen = "off", nil
	d, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	var seen atomic.Int64
	d.ObserveFlows(func(b []flow.Flow) { seen.Add(int64(len(b))) })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { d.engine.pipe.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran; d.stop() }()
	batch := make([]flow.Flow, 64)
	now := time.Now()
	for i := range batch {
		batch[i] = flow.Flow{SrcAddr: netip.MustParseAddr("198.51.100.7"), DstAddr: netip.MustParseAddr("10.0.0.1"),
			DstPort: uint16(i), Proto: 6, Packets: 1, Bytes: 40, TimeReceived: now}
	}
	b.ReportAllocs()
	for b.Loop() {
		d.handleFlows(batch)
	}
}

// A stream (HandleStream) takes none of the few /api request slots, and
// the server's shutdown ends it at once through its closeAll.
func TestHandleStream(t *testing.T) {
	td := &testDaemon{udp: freeport.Get(t, "udp"), http: fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "tcp")),
		cfg: filepath.Join(t.TempDir(), "flowguard.yaml")}
	os.WriteFile(td.cfg, []byte(fmt.Sprintf("listen:\n  - {name: in, address: \"127.0.0.1:%d\"}\nhttp: {listen: %q, limits: {max_api_requests: 1}}\n", td.udp, td.http)), 0o644)
	cfg, err := config.Load(td.cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{ConfigPath: td.cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	var once sync.Once
	d.HandleStream("/api/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "open\n")
		w.(http.Flusher).Flush()
		select {
		case <-ended:
		case <-r.Context().Done():
		}
	}), func() { once.Do(func() { close(ended) }) })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	for i := 0; scrapeMetricErr(td.http) != nil; i++ {
		if i > 200 {
			t.Fatal("the daemon's API did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var bodies []io.ReadCloser
	for range 2 {
		resp, err := http.Get("http://" + td.http + "/api/stream")
		if err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "open\n" {
			t.Fatalf("stream: %q %v", line, err)
		}
		bodies = append(bodies, resp.Body)
	}
	c := &http.Client{Timeout: time.Second} // a slot would take 2 s to give up
	resp, err := c.Get("http://" + td.http + "/api/status")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/status beside two streams with max_api_requests 1: %v %v", resp, err)
	}
	resp.Body.Close()

	start := time.Now()
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	ran <- nil
	if took := time.Since(start); took >= HTTPDrainTimeout {
		t.Errorf("stopping took %s: the streams held the server to its drain deadline", took)
	}
	for _, b := range bodies {
		if _, err := io.ReadAll(b); err != nil {
			t.Errorf("stream not ended cleanly: %v", err)
		}
		b.Close()
	}
}
