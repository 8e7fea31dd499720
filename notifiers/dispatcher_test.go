package notifiers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
)

// recorder is a Notifier that keeps what it got; fail, when set, decides
// each attempt's error.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []*alert.Alert
	fail func(*alert.Alert) error
	hold chan struct{} // when set, Notify waits on it (a hung receiver)
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Close() error { return nil }
func (r *recorder) Notify(ctx context.Context, as ...*alert.Alert) error {
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range as {
		if r.fail != nil {
			if err := r.fail(a); err != nil {
				return err
			}
		}
		r.got = append(r.got, a)
	}
	return nil
}
func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.got {
		out = append(out, a.ID)
	}
	return out
}

func mk(id, rule, sev string, tags ...string) *alert.Alert {
	return &alert.Alert{ID: id, Rule: rule, Name: rule, Severity: sev, Tags: tags,
		FiredAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func fast() Delivery {
	return Delivery{Retry: Retry{Initial: Duration(5 * time.Millisecond), Max: Duration(20 * time.Millisecond)}, Timeout: Duration(time.Second)}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func closeNow(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRouting(t *testing.T) {
	siem, pager, chat, def := &recorder{name: "siem"}, &recorder{name: "pager"}, &recorder{name: "chat"}, &recorder{name: "default"}
	var targets []Target
	for _, r := range []*recorder{siem, pager, chat, def} {
		targets = append(targets, Target{Notifier: r, Delivery: fast()})
	}
	routes := []Route{
		{MinSeverity: "high", Notifiers: []string{"pager", "siem"}, Continue: true},
		{Tags: []string{"T1046"}, Notifiers: []string{"siem"}},
		{Rules: []string{"exfil-*"}, Severity: []string{"medium"}, Notifiers: []string{"chat"}},
		{Default: true, Notifiers: []string{"default"}},
	}
	d, err := New(targets, routes, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d.Send(mk("crit-scan", "port-scan", "critical", "T1046")) // pager, siem (once), then T1046 → siem
	d.Send(mk("low-scan", "port-scan", "low", "T1046"))       // siem
	d.Send(mk("exfil-med", "exfil-dns", "medium"))            // chat
	d.Send(mk("exfil-low", "exfil-dns", "low"))               // default
	over := mk("override", "port-scan", "critical")
	over.Notify = []string{"chat", "chat", "nosuch"} // bypasses routes; unknown counted
	d.Send(over)
	closeNow(t, d)
	for _, c := range []struct {
		r    *recorder
		want []string
	}{
		{siem, []string{"crit-scan", "low-scan"}},
		{pager, []string{"crit-scan"}},
		{chat, []string{"exfil-med", "override"}},
		{def, []string{"exfil-low"}},
	} {
		if got := c.r.ids(); !slices.Equal(got, c.want) {
			t.Errorf("%s got %v, want %v", c.r.name, got, c.want)
		}
	}
	if d.Unrouted() != 1 {
		t.Errorf("unrouted = %d, want 1", d.Unrouted())
	}
}

func TestNoRoutesMeansEveryone(t *testing.T) {
	a, b := &recorder{name: "a"}, &recorder{name: "b"}
	d, err := New([]Target{{Notifier: a}, {Notifier: b}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d.Send(mk("x", "r", "info"))
	closeNow(t, d)
	if len(a.ids()) != 1 || len(b.ids()) != 1 {
		t.Fatalf("a=%v b=%v", a.ids(), b.ids())
	}
}

func TestRetryAndPermanent(t *testing.T) {
	var mu sync.Mutex
	attempts := map[string]int{}
	r := &recorder{name: "r", fail: func(a *alert.Alert) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[a.ID]++
		switch {
		case a.ID == "bad":
			return Permanent(errors.New("400 bad request"))
		case attempts[a.ID] < 3:
			return errors.New("connection refused")
		}
		return nil
	}}
	d, err := New([]Target{{Notifier: r, Delivery: fast()}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d.Send(mk("ok", "r", "high"))
	d.Send(mk("bad", "r", "high"))
	d.Send(mk("ok2", "r", "high"))
	closeNow(t, d)
	s := d.Stats()[0]
	if !slices.Equal(r.ids(), []string{"ok", "ok2"}) || s.Sent != 2 || s.Failed != 1 || s.Retried != 4 || attempts["bad"] != 1 {
		t.Fatalf("ids %v stats %+v attempts %v", r.ids(), s, attempts)
	}
	if s.LastError != "" {
		t.Errorf("LastError %q after a success", s.LastError)
	}
}

func TestSendNeverBlocks(t *testing.T) {
	hung := &recorder{name: "hung", hold: make(chan struct{})}
	ok := &recorder{name: "ok"}
	hd := fast()
	hd.QueueSize = 10
	hd.Timeout = Duration(time.Hour)
	d, err := New([]Target{{Notifier: hung, Delivery: hd}, {Notifier: ok, Delivery: Delivery{QueueSize: 10000}}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	// Not a speed test (BenchmarkSend is): a Send that waited for the hung
	// notifier would never return, so a generous bound only catches that.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range 5000 {
			d.Send(mk(fmt.Sprint(i), "r", "high"))
		}
	}()
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("Send blocked on a hung notifier")
	}
	waitFor(t, "the healthy notifier", func() bool { return len(ok.ids()) == 5000 })
	s := d.Stats()[0]
	if s.Dropped < 5000-11 || s.Queued > 10 {
		t.Fatalf("hung notifier stats %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); err == nil || !strings.Contains(err.Error(), "not delivered") {
		t.Fatalf("Close with a hung notifier: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	r := &recorder{name: "r"}
	dl := fast()
	dl.RateLimit = RateLimit{PerRule: 3, Interval: Duration(200 * time.Millisecond)}
	d, err := New([]Target{{Notifier: r, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		d.Send(mk(fmt.Sprint("storm", i), "storm", "high"))
	}
	d.Send(mk("other", "other", "low"))
	waitFor(t, "the summary", func() bool { return len(r.ids()) == 5 })
	got := r.ids()
	if !slices.Equal(got[:4], []string{"storm0", "storm1", "storm2", "other"}) {
		t.Fatalf("got %v", got)
	}
	r.mu.Lock()
	sum := r.got[4]
	r.mu.Unlock()
	if sum.Rule != "storm" || sum.Value != 47 || !strings.Contains(sum.Message, "47 more alerts") {
		t.Fatalf("summary %+v", sum)
	}
	// A new window lets the rule through again.
	d.Send(mk("storm-later", "storm", "high"))
	closeNow(t, d)
	if s := d.Stats()[0]; s.RateLimited != 47 || s.Sent != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var down sync.Mutex
	isDown := true
	fail := func(*alert.Alert) error {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return errors.New("connection refused")
		}
		return nil
	}
	dl := fast()
	dl.SpoolDir = dir
	dl.QueueSize = 5 // smaller than the outage: the spool must take the rest
	r1 := &recorder{name: "hook", fail: fail}
	d1, err := New([]Target{{Notifier: r1, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // bursts of 4: the queue never overflows, the spool grows past it
		d1.Send(mk(fmt.Sprintf("a%02d", i), "r", "high"))
		if i%4 == 3 {
			waitFor(t, "spooled", func() bool { return d1.Stats()[0].Spooled == i+1 })
		}
	}
	if s := d1.Stats()[0]; s.Dropped != 0 {
		t.Fatalf("dropped during the outage: %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d1.Close(ctx); err == nil {
		t.Fatal("Close during an outage reported nothing left")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "hook", "*.json"))
	if len(files) != 20 {
		t.Fatalf("%d spool files, want 20", len(files))
	}
	down.Lock()
	isDown = false
	down.Unlock()
	r2 := &recorder{name: "hook", fail: fail}
	d2, err := New([]Target{{Notifier: r2, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d2.Send(mk("a20", "r", "high"))
	waitFor(t, "redelivery", func() bool { return len(r2.ids()) == 21 })
	closeNow(t, d2)
	var want []string
	for i := range 21 {
		want = append(want, fmt.Sprintf("a%02d", i))
	}
	if got := r2.ids(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v (in order, once each)", got, want)
	}
	if len(r1.ids()) != 0 {
		t.Fatalf("delivered during the outage: %v", r1.ids())
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "hook")); len(ents) != 0 {
		t.Fatalf("spool not empty after delivery: %d files", len(ents))
	}
}

var registerOnce sync.Once

func TestConfigDecode(t *testing.T) {
	registerOnce.Do(func() { Register("test-recorder", testRecorderFactory) })

	src := `
notifiers:
  - name: a
    type: test-recorder
    color: red
    delivery: {queue_size: 5, retry: {initial: 2s}, rate_limit: {per_rule: 3}}
  - name: b
    type: test-recorder
    colour: blue
  - name: a
    type: nosuch
routes:
  - severity: [urgent]
    notifiers: [a, c]
`
	var cfg Config
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	if d := cfg.Notifiers[0].Delivery; d.QueueSize != 5 || d.Retry.Initial.D() != 2*time.Second || d.RateLimit.PerRule != 3 {
		t.Fatalf("delivery %+v", d)
	}
	err := cfg.Validate()
	for _, want := range []string{
		`line 10: notifiers[2] "a": name: defined twice`,
		`type: "nosuch" is not one of`,
		`routes[0]: notifiers: "c" is not a configured notifier`,
		`routes[0]: severity: "urgent" is not one of [info low medium high critical]`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not hold %s", err, want)
		}
	}
	cfg.Notifiers = cfg.Notifiers[:2]
	cfg.Routes = nil
	_, err = Build(cfg, Deps{})
	if err == nil || !strings.Contains(err.Error(), `line 7: notifiers[1] "b" (test-recorder): line 9: colour: unknown key; allowed: color`) {
		t.Fatalf("Build: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a type twice did not panic")
		}
	}()
	Register("test-recorder", func(string, *yaml.Node, Deps) (Notifier, error) { return nil, nil })
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("FG_TOKEN", "s3cr3t-token")
	got, err := ExpandEnv("https://x/${FG_TOKEN}?a=$$b&c=$d")
	if err != nil || got != "https://x/s3cr3t-token?a=$b&c=$d" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := ExpandEnv("${FG_UNSET_VAR}"); err == nil || err.Error() != "environment variable FG_UNSET_VAR is not set" {
		t.Fatalf("unset: %v", err)
	}
}

func testRecorderFactory(name string, settings *yaml.Node, _ Deps) (Notifier, error) {
	var cfg struct {
		Color string `yaml:"color"`
	}
	if err := Decode(settings, &cfg); err != nil {
		return nil, err
	}
	return &recorder{name: name}, nil
}

func BenchmarkSend(b *testing.B) {
	r := &recorder{name: "a"}
	r2 := &recorder{name: "b"}
	d, err := New([]Target{{Notifier: r, Delivery: Delivery{QueueSize: 1 << 20}}, {Notifier: r2, Delivery: Delivery{QueueSize: 1 << 20}}},
		[]Route{{MinSeverity: "high", Tags: []string{"T1046"}, Notifiers: []string{"a", "b"}}, {Default: true, Notifiers: []string{"a"}}}, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	a := mk("x", "port-scan", "high", "scan", "T1046")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.Send(a)
	}
	b.StopTimer()
	d.Close(context.Background())
}

// Two dispatchers on one spool directory, as during a reload that
// changes the notifiers: neither writes over the other's files, and
// every alert of both is delivered.
func TestSpoolSharedDuringReload(t *testing.T) {
	dir := t.TempDir()
	dl := fast()
	dl.SpoolDir = dir
	hold := make(chan struct{})
	old := &recorder{name: "hook", hold: hold} // the old dispatcher's receiver hangs
	dl.Timeout = Duration(time.Hour)
	d1, err := New([]Target{{Notifier: old, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		d1.Send(mk(fmt.Sprintf("old%02d", i), "r", "high"))
	}
	waitFor(t, "the old alerts on disk", func() bool { return d1.Stats()[0].Spooled == 10 })
	fresh := &recorder{name: "hook"}
	d2, err := New([]Target{{Notifier: fresh, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		d1.Send(mk(fmt.Sprintf("late%02d", i), "r", "high")) // the engine still held the old one
		d2.Send(mk(fmt.Sprintf("new%02d", i), "r", "high"))
	}
	waitFor(t, "the old and new alerts", func() bool { return len(fresh.ids()) >= 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d1.Close(ctx) // the old receiver never answered: its alerts stay on disk
	closeNow(t, d2)
	close(hold)
	files, _ := filepath.Glob(filepath.Join(dir, "hook", "*.json"))
	d3, err := New([]Target{{Notifier: fresh, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "everything", func() bool {
		got := map[string]bool{}
		for _, id := range fresh.ids() {
			got[id] = true
		}
		return len(got) == 30
	})
	closeNow(t, d3)
	t.Logf("%d files left by the old dispatcher, delivered after the restart; %d deliveries for 30 alerts", len(files), len(fresh.ids()))
}

// Unreadable spool files (a torn write after a power cut, a disk error)
// are set aside as *.bad, counted as failed and as spool errors, and
// logged once, not once per file; the readable ones are delivered.
func TestUnreadableSpoolFilesSetAside(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := openSpool(filepath.Join(dir, "hook"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		f, err := sp.write(mk(fmt.Sprint("ok", i), "r", "high"), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 { // torn
			os.WriteFile(filepath.Join(dir, "hook", f.name), []byte(`{"id":"ok`), 0o640)
		}
	}
	var logs strings.Builder
	var mu sync.Mutex
	r := &recorder{name: "hook"}
	dl := fast()
	dl.SpoolDir = dir
	d, err := New([]Target{{Notifier: r, Delivery: dl}}, nil, Deps{Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spool", func() bool { return d.Stats()[0].Spooled == 0 })
	closeNow(t, d)
	s := d.Stats()[0]
	bad, _ := filepath.Glob(filepath.Join(dir, "hook", "*.bad"))
	if !slices.Equal(r.ids(), []string{"ok0", "ok2", "ok4"}) || s.Failed != 2 || s.SpoolErrors != 2 || len(bad) != 2 {
		t.Fatalf("delivered %v, %d .bad files, stats %+v", r.ids(), len(bad), s)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "spool read"); n != 1 {
		t.Errorf("%d log lines for 2 unreadable files, want 1 (and a count at shutdown):\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
