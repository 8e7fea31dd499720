package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The sample config (examples/flowguard.yaml) passes `run --check` once its
// file paths point at files that exist: every key in it is one the config
// knows, and every value is valid.
func TestSampleConfigChecks(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	data, err := os.ReadFile(filepath.Join(root, "examples", "flowguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "drop.txt")
	os.WriteFile(list, []byte("; Spamhaus DROP\n192.0.2.128/25 ; SBL1\n"), 0o644)
	r := strings.NewReplacer(
		"/var/lib/GeoIP/GeoLite2-City.mmdb", filepath.Join(root, "enrich", "geoip", "testdata", "flowguard-test-City.mmdb"),
		"/var/lib/GeoIP/GeoLite2-ASN.mmdb", filepath.Join(root, "enrich", "geoip", "testdata", "flowguard-test-ASN.mmdb"),
		"/etc/flowguard/drop.txt", list,
		"/etc/flowguard/rules", filepath.Join(root, "examples", "rules"),
		"/var/lib/flowguard/spool", filepath.Join(dir, "spool"),
		"/var/log/flowguard/alerts.jsonl", filepath.Join(dir, "alerts.jsonl"),
	)
	cfg := filepath.Join(dir, "flowguard.yaml")
	os.WriteFile(cfg, []byte(r.Replace(string(data))), 0o644)
	t.Setenv("SOC_WEBHOOK_URL", "https://hooks.example.net/x")
	t.Setenv("SOC_WEBHOOK_SECRET", "s3cret")
	t.Setenv("SNMP_COMMUNITY", "public")
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--check", "-c", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "config ok: 24 rules, 3 listeners, 5 notifiers") {
		t.Errorf("check said %q", out.String())
	}
	// A typo in a key is an error naming it, with exit 2.
	os.WriteFile(cfg, []byte("engine:\n  max_kyes: 10\n"), 0o644)
	errb.Reset()
	if code := run([]string{"run", "--check", "-c", cfg}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "max_kyes") {
		t.Fatalf("typo: exit %d, %s", code, errb.String())
	}
}
