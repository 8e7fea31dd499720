package engine

import (
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// A rule with per-network thresholds fires on each destination at its
// network's threshold: 30 SYNs are a flood for the office (20) but not for
// the CDN (1000) nor for an unlisted network (50); the alert carries the
// threshold that applied.
func TestPerNetworkThresholdFires(t *testing.T) {
	e, got := collect(t, mustRules(t, `rules:
  - id: syn
    severity: high
    where: "proto == 6 && syn && !ack"
    sum: packets
    group_by: [dst_addr]
    window: 10s
    threshold:
      default: 50
      by: dst_network
      networks: {office: 20, cdn: 1k}
`))
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for dst, network := range map[string]string{"10.1.0.1": "office", "10.2.0.1": "cdn", "10.3.0.1": ""} {
		var batch []flow.Flow
		for i := range 30 {
			f := synFlow("198.51.100.1", dst, 80, t0.Add(time.Duration(i)*10*time.Millisecond))
			f.DstNetwork = network
			batch = append(batch, f)
		}
		e.Process(batch)
	}
	if len(*got) != 1 {
		t.Fatalf("%d alerts, want 1 (the office's)", len(*got))
	}
	if a := (*got)[0]; a.Group["dst_addr"].(string) != "10.1.0.1" || a.Threshold != 20 || a.Value != 20 {
		t.Errorf("alert on %v value %v threshold %v", a.Group["dst_addr"], a.Value, a.Threshold)
	}
}
