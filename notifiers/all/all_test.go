package all

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/notifiers"
)

// The sample configuration (the README's) decodes strictly, builds every
// notifier type and routes.
func TestSampleConfigBuilds(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FG_TEST_DIR", dir)
	t.Setenv("FG_TEST_SNMP_AUTH", "snmp-auth-secret")
	t.Setenv("FG_TEST_SNMP_PRIV", "snmp-priv-secret")
	t.Setenv("FG_TEST_TOKEN", "T0KEN-xyz")
	t.Setenv("FG_TEST_HMAC", "hmac-key-xyz")
	data, err := os.ReadFile("testdata/notifiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg notifiers.Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	// The file notifier's path is expanded by the test, not the notifier.
	for i := range cfg.Notifiers {
		for _, n := range cfg.Notifiers[i].Settings.Content {
			n.Value = os.ExpandEnv(n.Value)
		}
	}
	cfg.Notifiers[5].Delivery.SpoolDir = os.ExpandEnv(cfg.Notifiers[5].Delivery.SpoolDir)
	d, err := notifiers.Build(cfg, notifiers.Deps{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, s := range d.Stats() {
		types = append(types, s.Type)
	}
	if want := []string{"stdout", "file", "syslog", "syslog", "snmptrap", "webhook", "webhook", "alertmanager"}; !slices.Equal(types, want) {
		t.Errorf("types %v, want %v", types, want)
	}
	if !d.Has("oncall") || d.Has("nosuch") {
		t.Error("Has")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Close(ctx)
	if !slices.Equal(notifiers.Types(), []string{"alertmanager", "file", "snmptrap", "stdout", "syslog", "webhook"}) {
		t.Errorf("registered types %v", notifiers.Types())
	}
}

// Every notifier's errors come back at once, each naming its entry.
func TestBuildReportsAllErrors(t *testing.T) {
	src := `
notifiers:
  - {name: a, type: webhook, url: "ftp://x"}
  - {name: b, type: syslog, address: "x:1", format: json}
  - {name: c, type: snmptrap, address: "x", version: "1"}
  - {name: d, type: file}
  - {name: e, type: alertmanager, urls: ["http://am:9093?x=1"], max_batch: 0}
`
	var cfg notifiers.Config
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	_, err := notifiers.Build(cfg, notifiers.Deps{})
	for _, want := range []string{
		`line 3: notifiers[0] "a" (webhook): url: must be an absolute http:// or https:// URL`,
		`line 4: notifiers[1] "b" (syslog): format: "json" is not one of rfc5424, rfc3164, cef`,
		`line 5: notifiers[2] "c" (snmptrap): version: "1" is not one of 2c, 3`,
		`line 6: notifiers[3] "d" (file): path: must be set`,
		`line 7: notifiers[4] "e" (alertmanager): urls[0]: takes no query or fragment`,
		"\nmax_batch: must be >= 1",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not hold %s", err, want)
		}
	}
}
