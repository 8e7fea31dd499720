package rules

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// resolve_after defaults to the window (1m for per-flow rules), escalate
// to DefaultEscalate; [] turns escalation off; bad values name the key.
func TestLifecycleKeys(t *testing.T) {
	set, err := LoadBytes("l.yaml", []byte(`
rules:
  - {id: a, severity: low, count: flows, window: 5m, threshold: 10}
  - {id: b, severity: low, count: flows, window: 5m, threshold: 10, resolve_after: 30s, escalate: [3, 30, 300]}
  - {id: c, severity: low, count: flows, window: 5m, threshold: 10, escalate: []}
  - {id: d, severity: low, where: "dst_port == 23"}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules
	if r[0].ResolveAfter != 5*time.Minute || !slices.Equal(r[0].Escalate, DefaultEscalate) {
		t.Errorf("defaults: %v %v", r[0].ResolveAfter, r[0].Escalate)
	}
	if r[1].ResolveAfter != 30*time.Second || !slices.Equal(r[1].Escalate, []float64{3, 30, 300}) {
		t.Errorf("set: %v %v", r[1].ResolveAfter, r[1].Escalate)
	}
	if len(r[2].Escalate) != 0 || r[3].ResolveAfter != time.Minute {
		t.Errorf("none: %v; per-flow resolve_after %v", r[2].Escalate, r[3].ResolveAfter)
	}
	for _, c := range []struct{ rule, want string }{
		{`resolve_after: 0s`, "resolve_after: must be positive"},
		{`resolve_after: 30`, "resolve_after: 30 needs a unit"},
		{`escalate: 2`, "escalate: must be a list of factors"},
		{`escalate: [1]`, "escalate[0]: 1: a factor must be above 1"},
		{`escalate: [3, 2]`, "escalate[1]: 2: factors must increase"},
		{`escalate: [two]`, "escalate[0]: must be a number"},
	} {
		_, err := LoadBytes("l.yaml", []byte("rules:\n  - {id: a, severity: low, count: flows, window: 5m, threshold: 10, "+c.rule+"}\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.rule, err, c.want)
		}
	}
}
