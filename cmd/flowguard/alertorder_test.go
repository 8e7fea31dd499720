package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// `make demo`: the demo capture's alerts come out in time order (the scan,
// whose flows the meter ends late, before the upload), and their messages
// carry the rule's unit while the JSON value stays the number.
func TestReplayDemoInTimeOrderWithUnits(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	demo := filepath.Join(root, "testdata", "demo.pcap")
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "-q", "--format", "text", demo}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("%d alerts from the demo:\n%s", len(lines), out.String())
	}
	stamps := make([]string, len(lines))
	for i, l := range lines {
		stamps[i], _, _ = strings.Cut(l, " ")
	}
	if !slices.IsSorted(stamps) {
		t.Errorf("alerts out of time order:\n%s", out.String())
	}
	for _, want := range []string{"sent 31.62MB to 127.0.0.30", "Heavy hitter: 31.62MB >= 10MB within 5m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no message %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"replay", "-q", "--format", "json", demo}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var found bool
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var a struct {
			Rule    string `json:"rule"`
			Value   any    `json:"value"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		if a.Rule == "outbound-exfiltration" {
			found = true
			if v, ok := a.Value.(float64); !ok || v != 31617894 {
				t.Errorf("JSON value %#v, want the number 31617894", a.Value)
			}
			if !strings.Contains(a.Message, "31.62MB") {
				t.Errorf("JSON message %q", a.Message)
			}
		}
	}
	if !found {
		t.Errorf("no outbound-exfiltration alert in the JSON replay:\n%s", out.String())
	}
}

// The held alerts are bounded: at max, those held are written in order and
// the bound is said once on stderr; a paced replay (max 0) holds nothing.
func TestAlertOrderBound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []int
	var warn bytes.Buffer
	o := &alertOrder{max: 3, warn: &warn, write: func(a *alert.Alert) { got = append(got, int(a.FiredAt.Sub(t0)/time.Second)) }}
	for _, s := range []int{5, 1, 3, 9, 2, 7, 4} {
		o.add(&alert.Alert{FiredAt: t0.Add(time.Duration(s) * time.Second)})
		if len(o.held) >= 3 {
			t.Fatalf("%d alerts held, bound 3", len(o.held))
		}
	}
	o.flush()
	if want := []int{1, 3, 5, 2, 7, 9, 4}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	if n := strings.Count(warn.String(), "more than 3 alerts"); n != 1 {
		t.Errorf("%d warnings, want 1: %q", n, warn.String())
	}
	got = got[:0]
	paced := &alertOrder{write: func(a *alert.Alert) { got = append(got, int(a.FiredAt.Sub(t0)/time.Second)) }}
	paced.add(&alert.Alert{FiredAt: t0.Add(5 * time.Second)})
	if len(got) != 1 || len(paced.held) != 0 {
		t.Errorf("a paced replay held its alert: written %v, held %d", got, len(paced.held))
	}
}
