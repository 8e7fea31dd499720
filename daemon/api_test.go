package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/web"
)

// apiDaemon serves a daemon's /api/alerts through the hardened server
// with the default configuration, on a loopback port.
func apiDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: cfg, recent: newRecentAlerts(1000)}
	srv, err := web.New(cfg.HTTP, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/alerts", d.apiAlerts)
	hs := srv.HTTPServer(mux)
	go hs.Serve(srv.Wrap(ln))
	t.Cleanup(func() { hs.Close() })
	return d, "http://" + ln.Addr().String()
}

// bigAlert is an alert as large as real ones get: five samples and a
// long message.
func bigAlert(i int, rule string) *alert.Alert {
	a := &alert.Alert{ID: fmt.Sprintf("%s-%d", rule, i), Rule: rule, Name: "Vertical port scan", Severity: "high",
		Tags: []string{"T1046", "scan"}, Group: map[string]any{"src_addr": "198.51.100.23", "dst_addr": "10.20.30.40"},
		Value: float64(i), Threshold: 100, Window: "1m0s", Message: strings.Repeat("m", 1024),
		FiredAt: time.Unix(int64(i), 0).UTC()}
	for j := range 5 {
		a.Samples = append(a.Samples, flow.Flow{SrcAddr: netip.MustParseAddr("198.51.100.23"),
			DstAddr: netip.MustParseAddr("10.20.30.40"), SrcPort: 40000, DstPort: uint16(j + 1), Proto: 6, Bytes: 44, Packets: 1})
	}
	return a
}

// 200 parallel requests for the largest page of /api/alerts (the probe
// that took the daemon from 189 MB to 1.13 GB RSS) keep the heap's growth
// under 64 MB: at most max_api_requests pages are written at once, each
// encoded one alert at a time.
func TestAPIAlertsParallelHeapBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory distorts heap figures")
	}
	d, base := apiDaemon(t)
	for i := range 1000 {
		d.recent.add(bigAlert(i, "vertical-port-scan"))
	}
	all, _ := d.recent.page(0, 1000, func(*alert.Alert) bool { return true })
	page, _ := json.MarshalIndent(all, "", "  ")
	t.Logf("one full page is about %.1f MB of JSON; 200 at once would be %.0f MB", float64(len(page))/1e6, 200*float64(len(page))/1e6)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base0 := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	var ok, busy atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(base + "/api/alerts?limit=1000")
			if err != nil {
				t.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				if n < int64(len(page))/2 {
					t.Errorf("a full page of %d bytes, want about %d", n, len(page))
				}
				ok.Add(1)
			case http.StatusServiceUnavailable:
				busy.Add(1)
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	growth := float64(peak.Load()-min(peak.Load(), base0)) / 1e6
	t.Logf("200 parallel requests: %d served, %d told to retry; heap grew at most %.1f MB", ok.Load(), busy.Load(), growth)
	if ok.Load() == 0 {
		t.Fatal("no request was served")
	}
	if growth > 64 {
		t.Errorf("heap grew %.1f MB serving 200 parallel requests, want under 64 MB", growth)
	}
}

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// Pages of /api/alerts follow one another by cursor even while new alerts
// arrive: every alert present at the first request is seen once, in
// order, and none twice.
func TestAPIAlertsPagesWhileAlertsArrive(t *testing.T) {
	d, base := apiDaemon(t)
	for i := range 30 {
		d.recent.add(bigAlert(i, []string{"a", "b"}[i%2]))
	}
	url := base + "/api/alerts?rule=a&limit=4"
	var ids []string
	for pages := 0; url != ""; pages++ {
		if pages > 10 {
			t.Fatal("pages do not end")
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var got []alert.Alert
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", url, resp.StatusCode, err)
		}
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		url = ""
		if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
			url = base + m[1]
		}
		for i := range 3 { // new alerts between pages
			d.recent.add(bigAlert(100+pages*3+i, "a"))
		}
	}
	var want []string
	for i := 28; i >= 0; i -= 2 {
		want = append(want, fmt.Sprintf("a-%d", i))
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("pages gave\n%v\nwant\n%v", ids, want)
	}
	resp, err := http.Get(base + "/api/alerts?limit=1001")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("limit over max_page: %d, want 400", resp.StatusCode)
	}
}

// One page of 100 alerts of a rule from a full ring: what an /api/alerts
// request holds the ring's lock for.
func BenchmarkAlertsPage(b *testing.B) {
	r := newRecentAlerts(1000)
	for i := range 1000 {
		r.add(bigAlert(i, []string{"a", "b"}[i%2]))
	}
	keep := func(a *alert.Alert) bool { return a.Rule == "b" }
	b.ReportAllocs()
	for b.Loop() {
		if out, next := r.page(0, 100, keep); len(out) != 100 || next == 0 {
			b.Fatal(len(out), next)
		}
	}
}
