package tuning_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/engine/tuning"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
)

// The report shows what the learning rules learned of every group: the
// baseline's mean and spread, the terms, the beacon's interval.
func TestReportShowsLearned(t *testing.T) {
	set, err := rules.LoadBytes("learn.yaml", []byte(`
rules:
  - id: normal
    severity: high
    sum: bytes
    group_by: [src_addr]
    window: 1m
    threshold: 1MB
    baseline: {warmup: 3}
  - id: ports
    severity: low
    group_by: [src_addr]
    new_terms: {field: dst_port}
  - id: calls
    severity: high
    beacon: {min_count: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := tuning.New(set, tuning.Config{})
	eng, err := engine.New(engine.Config{Observe: c.Observe}, set)
	if err != nil {
		t.Fatal(err)
	}
	var flows []flow.Flow
	for i := range 600 { // every 10 s for 100 minutes
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		flows = append(flows, tcp("10.0.0.1", "198.51.100.1", uint16(443+i%3), flow.TCPSyn|flow.TCPAck, 5000, at))
	}
	var totals tuning.Totals
	totals.Add(flows)
	eng.Process(flows)
	rep := c.Report(totals)
	rep.AddLearned(eng)

	var text bytes.Buffer
	rep.WriteText(&text)
	for _, want := range []string{
		"learned     baseline 1 group",
		"src_addr=10.0.0.1",
		"mean 34949.495 spread 499.974 over 99 samples (all)",
		"learned     new_terms 1 group",
		"3 terms",
		"learned     beacon 3 groups",
		"every 30s jitter 0% over 24 starts, score 1",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	rep.WriteJSON(&js)
	var back struct {
		Rules []struct {
			Rule    string
			Learned *engine.LearnedSummary
		}
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, r := range back.Rules {
		if r.Learned == nil || len(r.Learned.Top) == 0 {
			t.Errorf("%s: no learned groups in the JSON report", r.Rule)
		}
	}
}
