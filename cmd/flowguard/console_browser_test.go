package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"
)

// The web view in a real browser: Debian's chromium, headless, driven over
// the DevTools protocol (chromedp) against a daemon fed NetFlow.

// browser starts a headless Chromium of the test's own (a fresh profile)
// and returns its context and what the page wrote as console errors
// (console.error, uncaught exceptions, error entries of the browser log
// such as a failed request).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: the web view tests drive headless Chromium; install it (apt-get install chromium)")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errs = append(errs, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// browse runs browser actions under a timeout.
func browse(t *testing.T, ctx context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// value runs one browser action that returns a value, under a timeout.
func value[T any](t *testing.T, ctx context.Context, d time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type css = chromedp.CSS

// canvasInk counts the pixels of a canvas in the value's colour (blue,
// #1f5fa8) and in the threshold's (red, #b3261e).
const canvasInk = `(() => { const c = document.querySelector('%s'); if (!c) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let blue = 0, red = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i+2] > 120 && d[i+2] - d[i] > 50) blue++;
    if (d[i] > 150 && d[i] - d[i+1] > 60 && d[i] - d[i+2] > 60) red++;
  }
  return {blue, red}; })()`

// A port scan sent as NetFlow shows on the open Alerts page within 2 s,
// without a reload; its page draws the value against the threshold; every
// page renders; the browser logs no error.
func TestBrowserAlertsLive(t *testing.T) {
	d := startDaemon(t, "")
	ctx, consoleErrors := browser(t)
	base := "http://" + d.http
	browse(t, ctx, 20*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#alerts")), chromedp.WaitVisible(css("#live.on")))

	start := time.Now()
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.5", "127.0.0.9", 150), 0)
	browse(t, ctx, 2*time.Second-time.Since(start), chromedp.WaitVisible(css("#alert-rows tr[data-id]")))
	t.Logf("alert on the page %s after the scan was sent", time.Since(start).Round(time.Millisecond))
	rowText := value(t, ctx, 5*time.Second, chromedp.Text(css("#alert-rows tr[data-id]")))
	if !strings.Contains(rowText, "vertical-port-scan") || !strings.Contains(rowText, "127.0.0.5") {
		t.Errorf("alert row: %q", rowText)
	}

	// The filters: an address or a severity it does not have hides it,
	// its own address shows it again.
	filter := func(sel, v string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const i = document.querySelector(%q); i.value = %q;
				i.dispatchEvent(new Event('change')); return true; })()`, sel, v))(ctx, tg)
			return err
		})
	}
	browse(t, ctx, 5*time.Second, filter("input[name=addr]", "127.0.0.77"), chromedp.WaitNotPresent(css("#alert-rows tr[data-id]")),
		filter("input[name=addr]", "127.0.0.5"), chromedp.WaitVisible(css("#alert-rows tr[data-id]")),
		filter("select[name=severity]", "low"), chromedp.WaitNotPresent(css("#alert-rows tr[data-id]")),
		filter("select[name=severity]", "high"), chromedp.WaitVisible(css("#alert-rows tr[data-id]")))

	// The alert's page: the chart has ink, samples and the group are shown.
	browse(t, ctx, 10*time.Second, chromedp.Click(css("#alert-rows tr[data-id]")), chromedp.WaitVisible(css("#chart")),
		chromedp.WaitVisible(css("#samples tbody tr")))
	type ink struct{ Blue, Red int }
	got := value(t, ctx, 5*time.Second, chromedp.Evaluate[ink](fmt.Sprintf(canvasInk, "#chart")))
	t.Logf("chart: %d pixels of the value, %d of the threshold", got.Blue, got.Red)
	if got.Blue < 20 || got.Red < 200 {
		t.Error("the chart is missing the value or the threshold")
	}

	// The other pages render from the live APIs.
	count := func(sel string) int {
		return value(t, ctx, 5*time.Second, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	}
	browse(t, ctx, 15*time.Second, chromedp.Navigate(base+"/#/rules"), chromedp.WaitVisible(css("#rules tbody tr")))
	rules := count("#rules tbody tr")
	// The scan's group is a bar over the rule's threshold (its mark).
	if marks, over := count("#rules .bar .mark"), count("#rules .bar .fill.over"); marks == 0 || over == 0 {
		t.Errorf("rules page: %d threshold marks, %d groups over the threshold", marks, over)
	}
	browse(t, ctx, 15*time.Second, chromedp.Navigate(base+"/#/exporters"), chromedp.WaitVisible(css("#exporters tbody tr")))
	exporters := count("#exporters tbody tr")
	browse(t, ctx, 15*time.Second, chromedp.Navigate(base+"/#/top"), chromedp.WaitVisible(css("#top .bar")))
	bars := count("#top .bar .fill")
	if rules == 0 || exporters == 0 || bars < 4 {
		t.Errorf("rules %d rows, exporters %d rows, top talkers %d bars", rules, exporters, bars)
	}
	topText := value(t, ctx, 5*time.Second, chromedp.Text(css("#top")))
	for _, want := range []string{"127.0.0.5", "127.0.0.9", "/tcp"} {
		if !strings.Contains(topText, want) {
			t.Errorf("top talkers lack %s: %q", want, topText)
		}
	}
	errs := consoleErrors()
	if len(errs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// A silence created on the Silences page stops the next notification: the
// alert is recorded and shown, the webhook hears nothing of it.
func TestBrowserSilenceStopsNotification(t *testing.T) {
	sink := newAlertSink(t, 0)
	d := startDaemon(t, fmt.Sprintf("notifiers:\n  - name: hook\n    type: webhook\n    url: %q\n", sink.URL))
	base := "http://" + d.http
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.5", "127.0.0.9", 150), 0)
	waitFor(t, 10*time.Second, func() bool { n, _ := sink.counts(); return n == 1 }, "the first scan's notification")

	ctx, consoleErrors := browser(t)
	browse(t, ctx, 20*time.Second, createSilence(base, "rule=vertical-port-scan\ngroup.dst_addr=127.0.0.9", "test", "maintenance"))
	if status := value(t, ctx, 5*time.Second, chromedp.Text(css("#silence-rows tr[data-id] td"))); status != "active" {
		t.Errorf("new silence is %q, want active", status)
	}

	browse(t, ctx, 10*time.Second, chromedp.Navigate(base+"/#/alerts"), chromedp.WaitVisible(css("#alerts")), chromedp.WaitVisible(css("#live.on")))
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.6", "127.0.0.9", 150), 0)
	// The silenced alert shows, marked.
	browse(t, ctx, 5*time.Second, chromedp.WaitVisible(css("#alert-rows tr[data-id] .silenced")))
	time.Sleep(time.Second) // what a notifier would have had time to deliver
	if n, _ := sink.counts(); n != 1 {
		t.Errorf("the webhook received %d alerts, want only the one before the silence", n)
	}

	// Expire it from the page.
	browse(t, ctx, 10*time.Second, chromedp.Navigate(base+"/#/silences"), chromedp.WaitVisible(css("#silence-rows button.expire")),
		chromedp.Click(css("#silence-rows button.expire")),
		chromedp.WaitNotPresent(css("#silence-rows button.expire")))
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// createSilence fills and sends the Silences page's form, and waits for
// the new silence's row.
func createSilence(base, matchers, by, comment string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Navigate(base+"/#/silences"), chromedp.WaitVisible(css("#silence-form")),
		chromedp.SetValue(css("#silence-form textarea[name=matchers]"), matchers),
		chromedp.SetValue(css("#silence-form input[name=created_by]"), by),
		chromedp.SetValue(css("#silence-form input[name=comment]"), comment),
		chromedp.Click(css("#silence-form button[type=submit]")),
		chromedp.WaitVisible(css("#silence-rows tr[data-id]")))
}

func waitFor(t *testing.T, d time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Behind basic authentication: without credentials the page and the stream
// are refused (401); with them on every request, as a browser sends them
// once its user logged in, the page, its event stream and a silence posted
// from it all work (the POST passes the cross-site check).
func TestBrowserBehindBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonHTTP(t, fmt.Sprintf(", basic_auth_users: {alice: %q}", hash), "")
	base := "http://" + d.http
	for _, path := range []string{"/", "/ui/app.js", "/api/events", "/api/top"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %s, want 401", path, resp.Status)
		}
	}
	ctx, consoleErrors := browser(t)

	browse(t, ctx, 10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		cred := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Basic " + cred}})
		return err
	}))
	browse(t, ctx, 20*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#alerts")), chromedp.WaitVisible(css("#live.on")))
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.5", "127.0.0.9", 150), 0)
	browse(t, ctx, 5*time.Second, chromedp.WaitVisible(css("#alert-rows tr[data-id]")))
	browse(t, ctx, 10*time.Second, createSilence(base, "rule=vertical-port-scan", "alice", "change window"))
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(errs, "\n"))
	}
}
