package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
