package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// serve runs s in front of h on a loopback port until the test ends and
// returns the address.
func serve(t *testing.T, s *Server, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.HTTPServer(h)
	go srv.Serve(s.Wrap(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func newServer(t *testing.T, c Config) *Server {
	t.Helper()
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// toyMux has /healthz, a GET and a POST route and a route that blocks
// until release is closed.
func toyMux(release chan struct{}, entered chan struct{}) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /api/thing", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "thing\n") })
	mux.HandleFunc("POST /api/thing", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body over %d bytes (read %d)", tooBig.Limit, n), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintf(w, "changed (%d bytes)\n", n)
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "released\n")
	})
	mux.HandleFunc("/api/block", func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "released\n")
	})
	return mux
}

// keepAlive is a raw client connection that sends requests by hand.
type keepAlive struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{Conn: c, r: bufio.NewReader(c)}
}

// get sends one keep-alive request and returns the status and body.
func (k *keepAlive) get(path string) (int, string, error) {
	k.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(k, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// closedByPeer tells whether the server closed the connection (a read
// ends with EOF or a reset within the deadline).
func (k *keepAlive) closedByPeer(within time.Duration) bool {
	k.SetReadDeadline(time.Now().Add(within))
	_, err := k.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// N idle keep-alive connections fill the server; the next one still gets
// /healthz answered, one idle connection (the idlest) is closed to make
// room, and the count of open connections never passes N however many
// more come.
func TestIdleConnectionsCannotLockOutHealthz(t *testing.T) {
	const n = 64
	s := newServer(t, Config{Limits: Limits{MaxConnections: n}})
	addr := serve(t, s, toyMux(nil, nil))
	conns := make([]*keepAlive, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		if code, _, err := conns[i].get("/healthz"); err != nil || code != 200 {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
	}
	if got := s.ln.open(); got != n {
		t.Fatalf("%d connections open, want %d", got, n)
	}
	extra := dial(t, addr)
	if code, body, err := extra.get("/healthz"); err != nil || code != 200 || body != "ok\n" {
		t.Fatalf("connection %d: %d %q %v", n+1, code, body, err)
	}
	// The victim was closed before the new connection was served, so its
	// end of file is already there to read.
	closed := 0
	for _, c := range conns {
		if c.closedByPeer(20 * time.Millisecond) {
			closed++
		}
	}
	if closed != 1 || s.ln.evicted.Load() != 1 {
		t.Errorf("%d idle connections closed (%d evictions) to make room for one, want 1", closed, s.ln.evicted.Load())
	}
	for i := range 3 * n {
		c := dial(t, addr)
		if code, _, err := c.get("/healthz"); err != nil || code != 200 {
			t.Fatalf("extra connection %d: %d %v", i, code, err)
		}
		if got := s.ln.open(); got > n {
			t.Fatalf("%d connections open, over the limit of %d", got, n)
		}
	}
	if ev := s.ln.evicted.Load(); ev < 3*n {
		t.Errorf("%d evictions, want at least %d", ev, 3*n)
	}
}

// When every allowed connection is busy with a request, a new one is
// answered 503 (not reset, not left hanging) and counted; once the busy
// ones finish, /healthz answers again.
func TestBusyConnectionsRefusedCleanly(t *testing.T) {
	const n = 4
	release, entered := make(chan struct{}), make(chan struct{}, n)
	s := newServer(t, Config{Limits: Limits{MaxConnections: n}})
	addr := serve(t, s, toyMux(release, entered))
	var wg sync.WaitGroup
	for range n {
		c := dial(t, addr)
		wg.Add(1)
		go func() { defer wg.Done(); c.get("/block") }()
		<-entered
	}
	refused := dial(t, addr)
	code, body, err := refused.get("/healthz")
	if err != nil || code != http.StatusServiceUnavailable || body != "too many connections\n" {
		t.Fatalf("connection %d: %d %q %v, want 503 too many connections", n+1, code, body, err)
	}
	if got := (metricOf(t, s, "flowguard_http_connections_refused_total")); got != 1 {
		t.Errorf("refused counter %v, want 1", got)
	}
	close(release)
	wg.Wait()
	if code, _, err := dial(t, addr).get("/healthz"); err != nil || code != 200 {
		t.Fatalf("after the busy ones ended: %d %v", code, err)
	}
}

// The default limit holds with real connections: 1,500 connections that
// never send a request leave at most 512 open on the server, and /healthz
// answers throughout.
func TestDefaultConnectionLimit(t *testing.T) {
	s := newServer(t, Config{})
	addr := serve(t, s, toyMux(nil, nil))
	max := s.cfg.Limits.MaxConnections
	if max != 512 {
		t.Fatalf("default max_connections %d, want 512", max)
	}
	const total = 1500
	var silent []net.Conn
	for i := range total {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		silent = append(silent, c)
		if i%250 == 0 {
			if code, _, err := dial(t, addr).get("/healthz"); err != nil || code != 200 {
				t.Fatalf("after %d silent connections: /healthz %d %v", i, code, err)
			}
		}
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	if code, _, err := dial(t, addr).get("/healthz"); err != nil || code != 200 {
		t.Fatalf("after %d silent connections: /healthz %d %v", total, code, err)
	}
	// Accept runs behind the dials: wait until it has taken them all.
	deadline := time.Now().Add(10 * time.Second)
	for s.ln.evicted.Load() < total-uint64(max) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if open := s.ln.open(); open > max {
		t.Fatalf("%d connections open, over the default limit of %d", open, max)
	}
	if ev := s.ln.evicted.Load(); ev < total-uint64(max) {
		t.Fatalf("%d silent connections evicted, want at least %d", ev, total-max)
	}
}

// A slowloris client (headers a byte at a time) and an idle keep-alive
// client are both closed by the server's timeouts.
func TestTimeoutsCloseSlowAndIdleClients(t *testing.T) {
	s := newServer(t, Config{Timeouts: Timeouts{ReadHeader: 300 * time.Millisecond, Idle: 300 * time.Millisecond}})
	addr := serve(t, s, toyMux(nil, nil))

	slow := dial(t, addr)
	io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: test\r\n")
	closed := false
	for i := 0; i < 50 && !closed; i++ { // up to 5s of trickling
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(slow, "X"); err != nil {
			closed = true
		}
	}
	if !closed && !slow.closedByPeer(time.Second) {
		t.Error("a slowloris connection was still open after 5s with read_header 300ms")
	}

	idle := dial(t, addr)
	if code, _, err := idle.get("/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz: %d %v", code, err)
	}
	if !idle.closedByPeer(5 * time.Second) {
		t.Error("an idle keep-alive connection was still open after 5s with idle 300ms")
	}
}

// Bodies and headers past their limits are refused.
func TestBodyAndHeaderLimits(t *testing.T) {
	s := newServer(t, Config{Limits: Limits{MaxBodyBytes: 1000, MaxHeaderBytes: 2048}})
	addr := serve(t, s, toyMux(nil, nil))
	post := func(n int) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/thing", strings.NewReader(strings.Repeat("x", n)))
		req.Header.Set("X-Requested-With", "test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(1000); code != 200 || body != "changed (1000 bytes)\n" {
		t.Errorf("1000-byte body: %d %q", code, body)
	}
	if code, body := post(1 << 20); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "read 1000)") {
		t.Errorf("1 MiB body: %d %q, want 413 after reading 1000 bytes", code, body)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("y", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
}

// At most max_api_requests /api requests run at once; the next waits two
// seconds, then gets 503; /healthz is not held up by them.
func TestAPIConcurrencyBound(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 2)
	s := newServer(t, Config{Limits: Limits{MaxAPIRequests: 2}})
	addr := serve(t, s, toyMux(release, entered))
	var wg sync.WaitGroup
	for range 2 {
		c := dial(t, addr)
		wg.Add(1)
		go func() { defer wg.Done(); c.get("/api/block") }()
		<-entered
	}
	code, _, err := dial(t, addr).get("/api/thing")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("third API request: %d %v, want 503", code, err)
	}
	if code, _, err := dial(t, addr).get("/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz while the API is busy: %d %v", code, err)
	}
	if got := (metricOf(t, s, "flowguard_http_api_rejected_total")); got != 1 {
		t.Errorf("api rejected counter %v, want 1", got)
	}
	close(release)
	wg.Wait()
	if code, _, err := dial(t, addr).get("/api/thing"); err != nil || code != 200 {
		t.Errorf("API request after: %d %v", code, err)
	}
}

// metricOf returns the value of s's metric named name (summed over its
// labels).
func metricOf(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	s.Collect(ch)
	close(ch)
	var sum float64
	found := false
	for m := range ch {
		if !strings.Contains(m.Desc().String(), `"`+name+`"`) {
			continue
		}
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetCounter().GetValue() + d.GetGauge().GetValue()
		found = true
	}
	if !found {
		t.Fatalf("no metric %s", name)
	}
	return sum
}
