package alert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The JSON form is a contract: the keys of alert/README.md in its order, times
// in UTC RFC 3339, and empty collections as [] or {} rather than null.
func TestJSONContract(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	a := &Alert{ID: "x", Rule: "r", Name: "R", Severity: "high", Value: 1543, Threshold: 100, Window: "1m0s",
		FirstSeen: at, LastSeen: at, FiredAt: at, SamplingRate: 1}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	order := []string{"id", "rule", "name", "severity", "tags", "group", "value", "threshold", "window",
		"first_seen", "last_seen", "fired_at", "status", "peak", "notifications", "silenced_by",
		"message", "enrichment", "sampling_rate", "samples"}
	last := -1
	for _, k := range order {
		i := strings.Index(s, `"`+k+`":`)
		if i < 0 || i < last {
			t.Fatalf("key %q missing or out of order in %s", k, s)
		}
		last = i
	}
	if strings.Contains(s, "ended_at") {
		t.Errorf("a firing alert has an ended_at: %s", s)
	}
	for _, want := range []string{`"tags":[]`, `"group":{}`, `"samples":[]`, `"enrichment":{}`, `"status":"firing"`, `"silenced_by":[]`,
		`"fired_at":"2026-11-27T11:00:00Z"`, `"value":1543`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if strings.Contains(s, "Notify") || strings.Contains(s, "notify") {
		t.Errorf("routing hints leak into the JSON: %s", s)
	}
}

func TestText(t *testing.T) {
	a := &Alert{Rule: "scan", Severity: "high", Tags: []string{"T1046"}, Group: map[string]any{"src_addr": "10.0.0.5", "dst_addr": "10.0.0.9"},
		Value: 100, Threshold: 100, Window: "1m0s", FiredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Message: "m"}
	want := "2026-01-02T03:04:05Z [HIGH] scan (T1046) dst_addr=10.0.0.9 src_addr=10.0.0.5 value=100 threshold=100 window=1m0s: m"
	if got := a.Text(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if FormatNumber(2.5) != "2.5" || FormatNumber(3) != "3" {
		t.Errorf("FormatNumber: %s %s", FormatNumber(2.5), FormatNumber(3))
	}
}

// A resolved alert carries its end in UTC, and reads back the same.
func TestResolvedJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	end := at.Add(4*time.Minute + 10*time.Second).In(time.FixedZone("CET", 3600))
	a := &Alert{ID: "x", Rule: "r", Status: StatusResolved, EndedAt: &end, Peak: 2000, Notifications: 3,
		SilencedBy: []string{"s1"}, FirstSeen: at, LastSeen: at.Add(4 * time.Minute), FiredAt: at}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"status":"resolved","ended_at":"2026-11-27T12:04:10Z","peak":2000,"notifications":3,"silenced_by":["s1"]`) {
		t.Errorf("resolved JSON: %s", b)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil || !back.Resolved() || !back.EndedAt.Equal(end) || back.Peak != 2000 {
		t.Errorf("read back: %v %+v", err, back)
	}
	if !strings.Contains(a.Text(), "status=resolved peak=2000") {
		t.Errorf("text: %s", a.Text())
	}
}
