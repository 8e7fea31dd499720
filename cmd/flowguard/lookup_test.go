package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// lookup without a database says so on stderr, and calls loopback what the
// bundled pack calls it: not internal.
func TestLookupSaysWhatItLacks(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"lookup", "127.0.0.9", "10.1.2.3"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "address:        127.0.0.9\ninternal:       false\n") ||
		!strings.Contains(out.String(), "address:        10.1.2.3\ninternal:       true\n") {
		t.Errorf("lookup said:\n%s", out.String())
	}
	for _, want := range []string{"no GeoIP database", "no threat list", "no config (-c)", "loopback is not internal"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	db := filepath.Join(root, "enrich", "geoip", "testdata", "flowguard-test-City.mmdb")
	out.Reset()
	errb.Reset()
	if code := run([]string{"lookup", "--geoip", db, "127.0.0.9"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "no GeoIP database") || !strings.Contains(out.String(), "country:") {
		t.Errorf("with --geoip: stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
}
