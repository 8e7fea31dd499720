package receive_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/internal/lockedbuf"
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all"
	"github.com/flowguard/flowguard/notifiers/receive"
	"gopkg.in/yaml.v3"
)

func sample(id string) *alert.Alert {
	return &alert.Alert{ID: id, Rule: "vertical-port-scan", Name: "Vertical port scan", Severity: "high",
		Group: map[string]any{"src_addr": "127.0.0.1", "dst_addr": "127.0.0.9"}, Value: 1000, Threshold: 100,
		Window: "1m0s", FiredAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), Message: "127.0.0.1 probed 1000 ports of 127.0.0.9"}
}

// dispatch sends one alert through real notifiers built from a notifiers:
// section, and waits until they delivered it.
func dispatch(t *testing.T, section string, a *alert.Alert) {
	t.Helper()
	var cfg notifiers.Config
	if err := yaml.Unmarshal([]byte(section), &cfg); err != nil {
		t.Fatal(err)
	}
	d, err := notifiers.Build(cfg, notifiers.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	d.Send(a)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Close(ctx) // delivers what is queued
}

func waitFor(t *testing.T, out *lockedbuf.Buffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for _, w := range want {
			all = all && strings.Contains(out.String(), w)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver printed:\n%s\nwant every one of %q", out.String(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The syslog receiver prints, one line each, what flowguard's syslog
// notifier sends over UDP, over TCP with octet counting and over TCP with
// newline framing.
func TestSyslogReceivesFlowguard(t *testing.T) {
	var out lockedbuf.Buffer
	p := receive.NewPrinter(&out)
	s, err := receive.ListenSyslog("127.0.0.1:0", p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	dispatch(t, fmt.Sprintf(`notifiers:
  - {name: u, type: syslog, address: %q, network: udp}
  - {name: t, type: syslog, address: %q, network: tcp}
  - {name: n, type: syslog, address: %q, network: tcp, framing: non-transparent, format: cef}
`, s.Addr(), s.Addr(), s.Addr()), sample("one"))
	waitFor(t, &out, "syslog udp 127.0.0.1:", "syslog tcp 127.0.0.1:", "CEF:0|flowguard|flowguard|")
	// Both TCP notifiers print "syslog tcp": wait for the third message.
	for deadline := time.Now().Add(10 * time.Second); p.Count() < 3 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if p.Count() != 3 {
		t.Errorf("printed %d messages, want 3:\n%s", p.Count(), out.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(l, "vertical-port-scan") {
			t.Errorf("a line without the rule: %s", l)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// A frame longer than MaxMessageBytes ends its connection, and says so.
func TestSyslogRefusesHugeFrame(t *testing.T) {
	var out lockedbuf.Buffer
	s, err := receive.ListenSyslog("127.0.0.1:0", receive.NewPrinter(&out))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%d <14>x", receive.MaxMessageBytes+1)
	waitFor(t, &out, "connection dropped: octet count")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection stayed open")
	}
}

// The webhook receiver answers 200 and prints each JSON body on one line;
// it refuses GET and bodies over the limit.
func TestWebhookReceivesFlowguard(t *testing.T) {
	var out lockedbuf.Buffer
	p := receive.NewPrinter(&out)
	wh, err := receive.ListenWebhook("127.0.0.1:0", p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wh.Serve(ctx) }()
	dispatch(t, fmt.Sprintf(`notifiers:
  - {name: hook, type: webhook, url: "http://%s/alerts"}
`, wh.Addr()), sample("webhook-one"))
	waitFor(t, &out, `webhook POST /alerts 127.0.0.1:`, `"id":"webhook-one"`, `"rule":"vertical-port-scan"`)
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("want one line:\n%s", out.String())
	}
	resp, err := http.Get("http://" + wh.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	resp, err = http.Post("http://"+wh.Addr()+"/", "application/json", strings.NewReader(strings.Repeat("x", receive.MaxMessageBytes+1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
