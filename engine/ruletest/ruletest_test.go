package ruletest

import (
	"testing"

	"github.com/flowguard/flowguard/rules"
)

const scanRule = `
rules:
  - id: scan
    severity: high
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr]
    window: 1m
    threshold: 10
`

// A case that expects a status checks the resolved alerts too (and never
// the escalations); one that does not checks the first notification of
// each alert only, as cases written before the lifecycle do.
func TestResolvedAlertsChecked(t *testing.T) {
	set, err := rules.LoadBytes("scan.yaml", []byte(scanRule))
	if err != nil {
		t.Fatal(err)
	}
	res := Run(set, "testdata/resolve")
	if !res.Passed() || res.Alerts != 3 {
		t.Fatalf("%d alerts: %s", res.Alerts, res.String())
	}
	res = Run(set, "testdata/resolve-unmarked")
	if !res.Passed() || res.Alerts != 2 {
		t.Fatalf("without status: %d alerts: %s", res.Alerts, res.String())
	}
}
