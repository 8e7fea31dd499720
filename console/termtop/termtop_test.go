package termtop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/console"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/internal/lockedbuf"
	"github.com/flowguard/flowguard/talkers"
)

// daemonAPI serves the console's /api/top over real talkers and a fixed
// /api/alerts.
func daemonAPI(t *testing.T) string {
	tk := talkers.New(16, nil)
	f := flow.Flow{SrcAddr: netip.MustParseAddr("192.0.2.10"), DstAddr: netip.MustParseAddr("198.51.100.20"), DstPort: 22, Bytes: 123456, Packets: 100, SrcAS: 64512}
	f.SetProto(6)
	tk.Handle([]flow.Flow{f})
	mux := http.NewServeMux()
	(&console.Console{Hub: console.NewHub(0), Talkers: tk}).Register(mux)
	mux.HandleFunc("GET /api/alerts", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]map[string]any{
			{"id": "1", "rule": "ssh-bruteforce", "severity": "high", "status": "firing", "group": map[string]any{"src_addr": "192.0.2.10"}, "value": 40, "threshold": 20, "message": "40 SSH attempts"},
			{"id": "2", "rule": "old", "severity": "low", "status": "resolved"},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestOnce(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{URL: daemonAPI(t), Window: "1m", By: "bytes", Once: true}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"FIRING ALERTS (1)", "ssh-bruteforce", "src_addr=192.0.2.10", "192.0.2.10", "198.51.100.20", "22/tcp", "AS64512", "123.5kB"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old") {
		t.Errorf("a resolved alert shown:\n%s", s)
	}
}

// Live mode redraws, takes keys, and quits on q at once.
func TestLiveQuits(t *testing.T) {
	in, keys := io.Pipe()
	out := &lockedbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{URL: daemonAPI(t), Window: "5m", By: "bytes", Interval: 100 * time.Millisecond}, in, out)
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", s, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("window 5m by bytes")
	io.WriteString(keys, "w")
	waitFor("window 15m by bytes")
	io.WriteString(keys, "b")
	waitFor("window 15m by packets")
	start := time.Now()
	io.WriteString(keys, "q")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("q did not quit within 1s")
	}
	t.Logf("quit after %s", time.Since(start))
	if !strings.HasSuffix(out.String(), "\x1b[?25h\x1b[?1049l") {
		t.Error("the terminal was not restored")
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{URL: "x", Window: "5m", By: "bytes"}, {URL: "http://h", Window: "2m", By: "bytes"}, {URL: "http://h", Window: "5m", By: "flows"}} {
		if err := o.Check(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
