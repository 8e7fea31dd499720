package console

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/talkers"
	"github.com/flowguard/flowguard/web"
)

// serve runs the console behind a real web.Server (its checks and
// timeouts) on a loopback port; cfg tunes the server.
func serve(t *testing.T, c *Console, cfg web.Config) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := web.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Streams(EventsPath)
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := s.HTTPServer(mux)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

type source struct {
	mu  sync.Mutex
	fns []func(Event)
}

func (s *source) Observe(fn func(Event)) { s.mu.Lock(); s.fns = append(s.fns, fn); s.mu.Unlock() }
func (s *source) emit(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fn := range s.fns {
		fn(ev)
	}
}

// openStream opens /api/events and returns a reader of its lines.
func openStream(t *testing.T, base string) (*bufio.Reader, *http.Response) {
	t.Helper()
	resp, err := http.Get(base + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	return bufio.NewReader(resp.Body), resp
}

// nextEvent reads lines until an event's data line.
func nextEvent(t *testing.T, r *bufio.Reader) (string, string) {
	t.Helper()
	var name string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimSpace(line[7:])
		case strings.HasPrefix(line, "data: "):
			return name, strings.TrimSpace(line[6:])
		}
	}
}

// Events reach every stream, outlive the server's read and write timeouts,
// and never take one of the few /api request slots.
func TestEventsStream(t *testing.T) {
	hub := NewHub(4)
	hub.ping = 50 * time.Millisecond
	src := &source{}
	hub.Observe(src)
	base := serve(t, &Console{Hub: hub, Talkers: talkers.New(8, nil)}, web.Config{
		Timeouts: web.Timeouts{Read: 300 * time.Millisecond, Write: 300 * time.Millisecond},
		Limits:   web.Limits{MaxAPIRequests: 1},
	})
	r1, _ := openStream(t, base)
	r2, _ := openStream(t, base)
	for hub.Stats().Streams < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	// Both streams hold on; a short API request still gets its slot.
	if resp, err := http.Get(base + "/api/top"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("api/top beside two streams: %v %v", resp, err)
	}
	time.Sleep(500 * time.Millisecond) // beyond the read and write timeouts
	src.emit(Event{Kind: "firing", Alert: &alert.Alert{ID: "a1", Rule: "port-scan", Value: 120, Threshold: 100}})
	for _, r := range []*bufio.Reader{r1, r2} {
		name, data := nextEvent(t, r)
		var a map[string]any
		if err := json.Unmarshal([]byte(data), &a); err != nil || name != "alert" || a["id"] != "a1" || a["rule"] != "port-scan" {
			t.Fatalf("event %q %s (%v)", name, data, err)
		}
	}
	// Pings arrive as comments.
	line, err := r1.ReadString('\n')
	for err == nil && line != ": ping\n" {
		line, err = r1.ReadString('\n')
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Streams are bounded, and a client that does not read is dropped without
// holding up the others.
func TestEventsBoundedAndSlowDropped(t *testing.T) {
	hub := NewHub(2)
	base := serve(t, &Console{Hub: hub, Talkers: talkers.New(8, nil)}, web.Config{})
	addr := strings.TrimPrefix(base, "http://")
	// The slow client: a raw connection that never reads, with a small
	// receive buffer.
	d := net.Dialer{Control: nil}
	slow, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(slow, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
	fast, _ := openStream(t, base)
	for hub.Stats().Streams < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	if resp, err := http.Get(base + EventsPath); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	big := &alert.Alert{ID: "big", Message: strings.Repeat("x", 64<<10)}
	done := make(chan struct{})
	go func() { // the fast reader keeps up
		defer close(done)
		for range 200 {
			if name, _ := nextEvent(t, fast); name != "alert" {
				t.Error(name)
				return
			}
		}
	}()
	for range 200 {
		hub.Publish(Event{Kind: "firing", Alert: big})
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the fast stream stalled behind the slow one")
	}
	deadline := time.Now().Add(15 * time.Second)
	for hub.Stats().Dropped == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := hub.Stats(); st.Dropped != 1 || st.Refused != 1 {
		t.Errorf("stats %+v: want the slow stream dropped and one refused", st)
	}
}

func TestTopAPI(t *testing.T) {
	tk := talkers.New(8, nil)
	f := flow.Flow{SrcAddr: netipAddr("192.0.2.1"), DstAddr: netipAddr("198.51.100.7"), DstPort: 443, Bytes: 5000, Packets: 5, DstAS: 64501}
	f.SetProto(6)
	tk.Handle([]flow.Flow{f, f})
	base := serve(t, &Console{Hub: NewHub(0), Talkers: tk}, web.Config{})
	resp, err := http.Get(base + "/api/top?window=1m&by=packets&n=5")
	if err != nil {
		t.Fatal(err)
	}
	var top talkers.Top
	json.NewDecoder(resp.Body).Decode(&top)
	resp.Body.Close()
	if top.Window != "1m" || top.By != "packets" || len(top.Sources) != 1 || top.Sources[0].Key != "192.0.2.1" ||
		top.Sources[0].Bytes != 10000 || top.Ports[0].Key != "443/tcp" || top.ASNs[0].Key != "AS64501" {
		t.Errorf("top: %+v", top)
	}
	for _, q := range []string{"window=2m", "by=flows", "n=0", "n=101", "n=x"} {
		resp, err := http.Get(base + "/api/top?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || len(b) < 5 {
			t.Errorf("%s: %s %q, want 400 with a reason", q, resp.Status, b)
		}
	}
}

// The pages come from the binary, with a policy that allows nothing from
// elsewhere.
func TestPagesEmbedded(t *testing.T) {
	base := serve(t, &Console{Hub: NewHub(0), Talkers: talkers.New(8, nil)}, web.Config{})
	for path, want := range map[string]string{"/": "<script src=\"/ui/app.js\">", "/ui/app.js": "new EventSource('/api/events')", "/ui/style.css": ".chart"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %s, body lacks %q", path, resp.Status, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s refers to another origin", path)
		}
	}
	if resp, _ := http.Get(base + "/ui/nothing.js"); resp.StatusCode != 404 {
		t.Errorf("missing asset: %s", resp.Status)
	}
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// With credentials configured, the pages, the stream and the top talkers
// need them like any /api path.
func TestBehindAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, &Console{Hub: NewHub(0), Talkers: talkers.New(8, nil)}, web.Config{BasicAuthUsers: map[string]string{"ops": string(hash)}})
	for _, path := range []string{"/", "/ui/app.js", "/api/top", EventsPath} {
		for _, c := range []struct {
			user, pass string
			want       int
		}{{"", "", 401}, {"ops", "wrong", 401}, {"ops", "s3cret", 200}} {
			req, _ := http.NewRequest("GET", base+path, nil)
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s as %q/%q: %s, want %d", path, c.user, c.pass, resp.Status, c.want)
			}
		}
	}
}
