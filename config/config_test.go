package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flowguard.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStoreForms(t *testing.T) {
	for _, c := range []struct {
		body, url string
		redis     bool
	}{
		{"", "", false},
		{"store: memory\n", "", false},
		{"store: redis://127.0.0.1:6379/0\n", "redis://127.0.0.1:6379/0", true},
		{"store:\n  redis: {url: \"redis+cluster://127.0.0.1:7000,127.0.0.1:7001\", flush_interval: 100ms}\n", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001", true},
	} {
		cfg, err := Load(write(t, c.body))
		if err != nil {
			t.Fatalf("%q: %v", c.body, err)
		}
		if (cfg.Store.Redis != nil) != c.redis || (c.redis && cfg.Store.Redis.URL != c.url) {
			t.Errorf("%q: store %+v", c.body, cfg.Store.Redis)
		}
	}
}

// Every mistake is reported, each naming where it is.
func TestErrorsNameTheField(t *testing.T) {
	for body, want := range map[string]string{
		"store: mongodb://x\n": `store: "mongodb://x" is neither memory nor a redis:// URL`,
		"store:\n  redis: {url: redis://h:1/0, flush_intervall: 1s}\n":                    `store.redis: unknown key "flush_intervall"`,
		"store:\n  redis: {url: redis://h:1/0, tls: {ca_fille: x}}\n":                     `store.redis.tls: unknown key "ca_fille"`,
		"engine: {max_kyes: 1}\n":                                                         "max_kyes",
		"log: {level: loud}\n":                                                            `log.level: "loud" is not one of debug, info, warn, error`,
		"listen:\n  - {name: a, address: \":2055\"}\n  - {name: a, address: \":2056\"}\n": `listen[1]: name: "a" used twice`,
		"sampling: {exporters: {edge1: 100}}\n":                                           `sampling.exporters: "edge1" is not an address`,
		"meter: {idle_timeout: soon}\n":                                                   `"soon" is not a duration`,
		"engine: {allowed_lateness: -1s}\n":                                               `"-1s" is not a duration`,
	} {
		_, err := Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 3 || c.HTTP.Listen != "127.0.0.1:9310" || c.Reload.WatchInterval() == 0 || c.Store.Redis != nil {
		t.Errorf("defaults %+v", c)
	}
	if m := c.Meter.MeterConfig(); m.ActiveTimeout == 0 || m.IdleTimeout == 0 {
		t.Errorf("meter defaults %+v", m)
	}
}

// exporter_clock: correction on and a 10 s warning unless the file says
// otherwise; 0s turns the warning off.
func TestExporterClock(t *testing.T) {
	for _, c := range []struct {
		body    string
		correct bool
		warning time.Duration
	}{
		{"", true, 10 * time.Second},
		{"exporter_clock: {correction: false}\n", false, 10 * time.Second},
		{"exporter_clock: {skew_warning: 2m}\n", true, 2 * time.Minute},
		{"exporter_clock: {skew_warning: 0s}\n", true, -1},
	} {
		cfg, err := Load(write(t, c.body))
		if err != nil {
			t.Fatalf("%q: %v", c.body, err)
		}
		if cfg.ExporterClock.Corrects() != c.correct || cfg.ExporterClock.Warning() != c.warning {
			t.Errorf("%q: correction %v, warning %v", c.body, cfg.ExporterClock.Corrects(), cfg.ExporterClock.Warning())
		}
	}
	if _, err := Load(write(t, "exporter_clock: {corection: false}\n")); err == nil || !strings.Contains(err.Error(), "corection") {
		t.Errorf("a typo passed: %v", err)
	}
}

func TestEngineTimeKeys(t *testing.T) {
	c, err := Load(write(t, "engine: {allowed_lateness: 90s, future_tolerance: 10s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Engine.AllowedLateness) != 90*time.Second || time.Duration(c.Engine.FutureTolerance) != 10*time.Second {
		t.Errorf("engine = %+v, want 90s lateness, 10s tolerance", c.Engine)
	}
}
