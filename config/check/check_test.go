package check

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/notifiers"
)

// One check reports the problems of every layer together, sorted by file
// and line, each at file:line:col: YAML keys and values, a rule path that
// does not exist, a database that does not exist, notifier settings (an
// unknown key, an unset ${ENV}), notifier names, and in the rule file a
// syntax error in an expression, an unknown field, a bad severity and a
// notifier nobody configured.
func TestSeveralLayersAtOnce(t *testing.T) {
	dir := filepath.Join("testdata", "several")
	t.Chdir(dir) // rule paths are relative to the working directory
	res := Run("flowguard.yaml", notifiers.Deps{Stdout: io.Discard})
	var got []string
	for _, e := range res.Errors {
		got = append(got, e.Error())
	}
	t.Logf("%d errors:\n%s", len(got), strings.Join(got, "\n"))
	want := []string{
		`flowguard.yaml:4:5: rules[1]: stat missing-rules: no such file or directory`,
		`flowguard.yaml:6:10: log.level: "loud" is not one of debug, info, warn, error`,
		`flowguard.yaml:7:3: unknown key "formatt"`,
		`flowguard.yaml:9:13: "lots" is not a whole number`,
		`flowguard.yaml:12:17: enrich.geoip.databases[0]: open missing/GeoLite2-City.mmdb: no such file or directory`,
		`flowguard.yaml:18:10: notifiers[0] "soc" (webhook): url:`,
		`flowguard.yaml:19:11: notifiers[1] "bad name": name: use letters`,
		`flowguard.yaml:21:5: notifiers[1] "bad name" (syslog): adress: unknown key`,
		`rules/scans.yaml:5:25: rule "port-scan": where: unexpected token EOF`,
		`rules/scans.yaml:12:15: rule "quiet": severity: "urgent" is not one of`,
		`rules/scans.yaml:13:28: rule "quiet": where: unknown name nonexistent_field`,
		`rules/scans.yaml:18:5: rule "pings": notify: no notifier named "pager"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d", len(got), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
}
