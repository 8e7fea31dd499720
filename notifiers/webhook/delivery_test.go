package webhook

// Delivery through a real HTTP receiver that is slow, hung or down: the
// dispatcher's spool loses nothing while it has room, shutdown keeps its
// deadline, and a broken spool is reported truthfully.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowguard/flowguard/notifiers"
)

// slowReceiver is a real HTTP server that takes delay per request, or
// hangs until the request is cancelled while hung is set, or answers 503
// while down is set. It records the alert ids it accepted, in order.
type slowReceiver struct {
	*httptest.Server
	delay      atomic.Int64 // nanoseconds
	hung, down atomic.Bool
	mu         sync.Mutex
	order      []string
	seen       map[string]int
}

func newSlowReceiver(t *testing.T, delay time.Duration) *slowReceiver {
	r := &slowReceiver{seen: map[string]int{}}
	r.delay.Store(int64(delay))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.hung.Load() {
			<-req.Context().Done()
			return
		}
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(time.Duration(r.delay.Load()))
		var a struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &a); err != nil || a.ID == "" {
			http.Error(w, "bad alert", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.order = append(r.order, a.ID)
		r.seen[a.ID]++
		r.mu.Unlock()
	}))
	t.Cleanup(func() { r.hung.Store(false); r.Close() })
	return r
}

// distinct returns how many different alerts arrived and how many
// arrived more than once.
func (r *slowReceiver) distinct() (n, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), len(r.order) - len(r.seen)
}

func hook(t *testing.T, url string, dl notifiers.Delivery, log *slog.Logger) *notifiers.Dispatcher {
	t.Helper()
	n, err := New("hook", Config{URL: url, Format: FormatJSON, Timeout: notifiers.Duration(time.Hour)}, "test")
	if err != nil {
		t.Fatal(err)
	}
	d, err := notifiers.New([]notifiers.Target{{Notifier: n, Type: "webhook", Delivery: dl}}, nil, notifiers.Deps{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func spoolFiles(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "hook", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// A burst of 3,500 alerts at a slow receiver with a 1,000-alert queue:
// with a spool nothing is dropped and every alert arrives, once, in order;
// without one the queue drops what does not fit.
func TestBurstSpillsToSpool(t *testing.T) {
	const burst = 3500
	r := newSlowReceiver(t, 2*time.Millisecond)
	dl := delivery(t.TempDir())
	dl.QueueSize = 1000
	d := hook(t, r.URL, dl, slog.New(slog.DiscardHandler))
	for i := range burst {
		d.Send(sample(i))
	}
	s := d.Stats()[0]
	if s.Dropped != 0 || s.Enqueued != burst {
		t.Fatalf("after the burst: %+v", s)
	}
	// Not timed: a file per alert takes a while on a loaded machine under
	// the race detector; the bound only stops a stuck spooler.
	for i := 0; d.Stats()[0].Queued > 0; i++ {
		if i > 6000 {
			t.Fatalf("the burst did not reach the disk: %+v", d.Stats()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The worker may hold one alert in its attempt at the slow receiver,
	// neither spooled nor sent yet: it is one or the other moments later.
	s = d.Stats()[0]
	for i := 0; uint64(s.Spooled)+s.Sent != burst && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
		s = d.Stats()[0]
	}
	if uint64(s.Spooled)+s.Sent != burst || s.SpoolBytes <= 0 {
		t.Fatalf("spooled %d + sent %d != %d: %+v", s.Spooled, s.Sent, burst, s)
	}
	t.Logf("burst of %d on disk: %d spooled (%d bytes), %d sent", burst, s.Spooled, s.SpoolBytes, s.Sent)
	r.delay.Store(0)
	for i := 0; ; i++ {
		if n, _ := r.distinct(); n == burst {
			break
		}
		if i > 6000 {
			n, _ := r.distinct()
			t.Fatalf("%d of %d alerts arrived: %+v", n, burst, d.Stats()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	closeWithin(t, d, 5*time.Second)
	r.mu.Lock()
	for i, id := range r.order {
		if want := sample(i).ID; id != want {
			t.Fatalf("alert %d is %s, want %s (in order, once each)", i, id, want)
		}
	}
	r.mu.Unlock()
	if n := spoolFiles(t, dl.SpoolDir); n != 0 {
		t.Errorf("%d spool files left after delivery", n)
	}

	// The same burst without a spool: the queue takes 1,000 (and the
	// worker the few it delivers meanwhile), the rest is dropped and
	// counted.
	r.delay.Store(int64(2 * time.Millisecond))
	dl.SpoolDir = ""
	d = hook(t, r.URL, dl, slog.New(slog.DiscardHandler))
	for i := range burst {
		d.Send(sample(i))
	}
	s = d.Stats()[0]
	if s.DroppedQueueFull+s.Enqueued != burst || s.DroppedQueueFull < burst-1100 || s.Dropped != s.DroppedQueueFull {
		t.Errorf("without a spool: %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d.Close(ctx)
}

func closeWithin(t *testing.T, d *notifiers.Dispatcher, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// A hung receiver: Close returns at its deadline, with every alert in the
// spool (the next dispatcher delivers them) or, without a spool, counted
// as dropped at shutdown.
func TestShutdownDeadlineWithHungReceiver(t *testing.T) {
	const n = 50
	const deadline = 300 * time.Millisecond
	r := newSlowReceiver(t, 0)
	r.hung.Store(true)
	for _, spool := range []string{t.TempDir(), ""} {
		d := hook(t, r.URL, delivery(spool), slog.New(slog.DiscardHandler))
		for i := range n {
			d.Send(sample(i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		err := d.Close(ctx)
		took := time.Since(start)
		cancel()
		// Generous slack for a loaded machine; the bound that matters is
		// that Close does not wait for the receiver (which never answers).
		if took > deadline+2*time.Second {
			t.Errorf("spool %q: Close took %v with a deadline of %v", spool, took, deadline)
		}
		s := d.Stats()[0]
		if spool != "" {
			want := fmt.Sprintf("%d alerts not delivered: %d kept in the spool, 0 dropped", n, n)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Close: %v, want %q", err, want)
			}
			if got := spoolFiles(t, spool); got != n || s.Spooled != n || s.Dropped != 0 {
				t.Errorf("%d files in the spool, stats %+v; want %d, none dropped", got, s, n)
			}
			r.hung.Store(false)
			d2 := hook(t, r.URL, delivery(spool), slog.New(slog.DiscardHandler))
			waitFor(t, "redelivery from the spool", func() bool { got, _ := r.distinct(); return got == n })
			closeWithin(t, d2, 5*time.Second)
			r.hung.Store(true)
			continue
		}
		want := fmt.Sprintf("%d alerts not delivered: 0 kept in the spool, %d dropped", n, n)
		if err == nil || !strings.Contains(err.Error(), want) || s.DroppedShutdown != n {
			t.Errorf("without a spool: Close %v, stats %+v; want %q", err, s, want)
		}
	}
}

// readOnly makes dir refuse new files: chmod for a normal user, the
// immutable attribute for root (whom permissions do not stop).
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o750) })
	} else if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make %s read-only as root: chattr: %v %s", dir, err, out)
	} else {
		t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	}
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Skipf("%s is still writable", dir)
	}
}

// A read-only spool directory: alerts wait in memory (up to queue_size)
// and Stats says so, the rest is dropped with its reason, the errors are
// counted, and the log holds one line for them, not one per alert.
func TestReadOnlySpoolTellsTheTruth(t *testing.T) {
	const sent = 1500
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hook"), 0o750); err != nil {
		t.Fatal(err)
	}
	readOnly(t, filepath.Join(dir, "hook"))
	r := newSlowReceiver(t, 0)
	r.down.Store(true)
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
	dl := delivery(dir)
	dl.QueueSize = 1000
	d := hook(t, r.URL, dl, log)
	for i := range sent {
		d.Send(sample(i))
	}
	waitFor(t, "the spool errors", func() bool { return d.Stats()[0].SpoolErrors >= sent })
	s := d.Stats()[0]
	// The worker may hold one alert in its delivery attempt besides the
	// full queue, so 499 or 500 are dropped.
	if lo, hi := uint64(sent-dl.QueueSize-1), uint64(sent-dl.QueueSize); s.Queued != dl.QueueSize || s.Spooled != 0 ||
		s.DroppedSpoolError < lo || s.DroppedSpoolError > hi || s.Dropped != s.DroppedSpoolError {
		t.Errorf("read-only spool: %+v; want queued %d, spooled 0, dropped (spool error) %d to %d", s, dl.QueueSize, lo, hi)
	}
	logMu.Lock()
	lines := strings.Count(logBuf.String(), "spool write failed")
	logMu.Unlock()
	if lines != 1 {
		t.Errorf("%d log lines for %d spool errors, want 1 a minute:\n%s", lines, s.SpoolErrors, logBuf.String())
	}
	t.Logf("%d spool errors, %d log line(s); stats %+v", s.SpoolErrors, lines, s)

	// The receiver is back: what waited in memory is delivered.
	held := sent - int(s.DroppedSpoolError)
	r.down.Store(false)
	waitFor(t, "the alerts held in memory", func() bool { n, _ := r.distinct(); return n == held })
	closeWithin(t, d, 5*time.Second)
	if s := d.Stats()[0]; s.Queued != 0 || s.Sent != uint64(held) {
		t.Errorf("after recovery: %+v, want %d sent", s, held)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A receiver that redirects does not get the request re-sent elsewhere:
// the custom headers (tokens) never reach the host it points to, and the
// redirect is an error that retrying cannot fix.
func TestRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	n, err := New("r", Config{URL: redirect.URL, Format: FormatJSON, Timeout: notifiers.Duration(2 * time.Second),
		Headers: map[string]string{"X-Api-Key": "k3y-Vq8-literal"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), sample(1))
	if err == nil || !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "307 Temporary Redirect") {
		t.Errorf("redirect: %v, want a permanent 307 error", err)
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the redirect was followed: %d requests elsewhere", elsewhere.Load())
	}
}
