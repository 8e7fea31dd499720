package engine

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// A condition failing at run time shows in Stats per rule, and the count
// survives a reload that keeps the rule.
func TestStatsCountRuleErrors(t *testing.T) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(prev)

	const src = `
rules:
  - id: city-pattern
    severity: low
    where: dst_city matches src_city
  - id: scan
    severity: high
    where: "proto == 6 && syn && !ack"
`
	e, got := collect(t, mustRules(t, src))
	f := synFlow("10.0.0.1", "192.0.2.1", 22, t0)
	f.SrcCity, f.DstCity = "Par(is", "Paris"
	g := synFlow("10.0.0.1", "192.0.2.1", 22, t0)
	g.SrcCity, g.DstCity = "^Par", "Paris"
	e.Process([]flow.Flow{f, f, g})

	byID := func() map[string]RuleStats {
		m := map[string]RuleStats{}
		for _, r := range e.Stats().Rules {
			m[r.ID] = r
		}
		return m
	}
	st := byID()
	if r := st["city-pattern"]; r.Errors != 2 || !strings.Contains(r.LastError, "missing closing )") || r.Matched != 1 {
		t.Errorf("city-pattern: %d errors, last %q, %d matched", r.Errors, r.LastError, r.Matched)
	}
	if r := st["scan"]; r.Errors != 0 || r.LastError != "" || r.Matched != 3 {
		t.Errorf("scan: %+v", r)
	}
	if len(*got) != 2 {
		t.Errorf("%d alerts, want 2 (one per rule, then suppressed)", len(*got))
	}

	if err := e.Reload(mustRules(t, src)); err != nil {
		t.Fatal(err)
	}
	e.Process([]flow.Flow{f})
	if r := byID()["city-pattern"]; r.Errors != 3 {
		t.Errorf("after reload: %d errors, want 3", r.Errors)
	}
}
