package config

import (
	"strings"
	"testing"
)

// One check reports every problem of the file at once, each at its line
// and column, sorted by line: unknown keys, values of the wrong type and
// invalid values, from every section.
func TestCheckReportsEveryErrorAtOnce(t *testing.T) {
	path := write(t, `log:
  level: loud
  formatt: json
engine:
  max_keys: lots
listen:
  - name: a
    address: "nope"
  - name: a
    address: ":2056"
sampling:
  exporters:
    edge1: 100
meter: {idle_timeout: soon}
rules_limits:
  max_nodes: -5
store: mongodb://x
notifiers:
  - name: hook
    type: webhoook
routes:
  - notifiers: [nobody]
`)
	_, root, errs := Check(path)
	if root == nil {
		t.Fatal("no tree")
	}
	var got []string
	for _, e := range errs {
		got = append(got, strings.TrimPrefix(e.Error(), path))
	}
	want := []string{
		`:2:10: log.level: "loud" is not one of debug, info, warn, error`,
		`:3:3: unknown key "formatt"`,
		`:5:13: "lots" is not a whole number`,
		`:8:14: listen[0]: address: "nope" is not host:port`,
		`:9:11: listen[1]: name: "a" used twice`,
		`:13:5: sampling.exporters: "edge1" is not an address`,
		`:14:23: "soon" is not a duration like 30s, 5m, 1h`,
		`:16:14: rules_limits: max_nodes: must be >= 0`,
		`:17:8: store: "mongodb://x" is neither memory nor a redis:// URL`,
		`:20:11: notifiers[0] "hook": type: "webhoook" is not one of`,
		`:22:17: routes[0]: notifiers: "nobody" is not a configured notifier`,
	}
	t.Logf("got:\n%s", strings.Join(got, "\n"))
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d", len(got), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// A YAML syntax error names the line and column of the offending token,
// where yaml.v3 alone names the line its construct started on (or the one
// before) and no column.
func TestCheckSyntaxErrorPosition(t *testing.T) {
	for body, want := range map[string]string{
		"log:\n  level: [\nengine: x\n":                ":2:10: YAML syntax: sequence end token ']' not found",
		"rules: []\nlog:\n\tlevel: info\n":             ":3:1: YAML syntax: found character '\t' that cannot start any token",
		"engine:\n  max_keys: 'unterminated\nlog: x\n": ":2:13: YAML syntax: could not find end character of single-quoted text",
		"engine: {max_keys: 1\nlog: {level: info}\n":   ":2:1: YAML syntax: ',' or '}' must be specified",
	} {
		path := write(t, body)
		_, root, errs := Check(path)
		if root != nil || len(errs) != 1 {
			t.Errorf("%q: tree %v, errors %v", body, root != nil, errs)
			continue
		}
		if got := strings.TrimPrefix(errs[0].Error(), path); got != want {
			t.Errorf("%q:\n got %s\nwant %s", body, got, want)
		}
	}
}

// A file that cannot be read is one error naming it.
func TestCheckMissingFile(t *testing.T) {
	_, _, errs := Check("/nonexistent/flowguard.yaml")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "/nonexistent/flowguard.yaml: open") {
		t.Errorf("errors %v", errs)
	}
}
