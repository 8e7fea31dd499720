package stdout

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

func TestRegisteredFactory(t *testing.T) {
	var cfg notifiers.Config
	if err := yaml.Unmarshal([]byte("notifiers:\n  - {name: out, type: stdout, format: text}\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d, err := notifiers.Build(cfg, notifiers.Deps{Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	d.Send(&alert.Alert{ID: "x", Rule: "r", Severity: "low", FiredAt: time.Unix(0, 0)})
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "1970-01-01T00:00:00Z [LOW] r  value=0 threshold=0 window=\n" {
		t.Fatalf("got %q", got)
	}
	yaml.Unmarshal([]byte("notifiers:\n  - {name: out, type: stdout, fromat: text}\n"), &cfg)
	if _, err := notifiers.Build(cfg, notifiers.Deps{}); err == nil || !strings.Contains(err.Error(), "fromat: unknown key; allowed: format") {
		t.Fatalf("typo: %v", err)
	}
}
