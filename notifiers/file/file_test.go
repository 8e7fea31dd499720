package file

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
)

func testAlert(id string) *alert.Alert {
	return &alert.Alert{ID: id, Rule: "r", Name: "R", Severity: "high", FiredAt: time.Unix(1700000000, 0)}
}

func TestReopenAfterRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "alerts.jsonl")
	n, err := New("f", Config{Path: p, Format: FormatJSON, Mode: "0600"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Notify(ctx, testAlert("a1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+".1"); err != nil { // logrotate
		t.Fatal(err)
	}
	if err := n.Notify(ctx, testAlert("a2")); err != nil { // still the old file
		t.Fatal(err)
	}
	if err := n.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, testAlert("a3")); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	ids := func(path string) []string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			out = append(out, m["id"].(string))
		}
		return out
	}
	if got := strings.Join(ids(p+".1"), ","); got != "a1,a2" {
		t.Errorf("rotated file holds %s, want a1,a2", got)
	}
	if got := strings.Join(ids(p), ","); got != "a3" {
		t.Errorf("new file holds %s, want a3", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestValidate(t *testing.T) {
	err := Config{Format: "xml", Mode: "rw"}.Validate()
	for _, want := range []string{"path: must be set", `format: "xml"`, `mode: "rw"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
