package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

// Two daemons on one Redis share what their rules learn: the ports one
// daemon saw from a host are not new to the other once both have synced
// (every learn.save_every), a port neither saw is.
func TestTwoDaemonsShareLearnedState(t *testing.T) {
	addr := startRedis(t)
	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rulesPath, []byte(`
rules:
  - id: new-port
    severity: low
    group_by: [src_addr]
    new_terms: {field: dst_port, learning: 0s}
    suppress: 1ms
`), 0o644)
	extra := fmt.Sprintf("store: %s\nrules: [%q]\nlearn: {state_dir: \"off\", save_every: 100ms}\n", sharedStore(addr), rulesPath)
	a, b := startDaemon(t, extra), startDaemon(t, extra)
	defer a.stop(t)
	defer b.stop(t)
	src := netip.MustParseAddr("10.0.0.7")
	t0 := time.Now().UTC()
	send := func(d *daemonProc, at time.Time, port uint16) {
		t.Helper()
		enc, err := gen.NewEncoder(gen.NetFlowV5, gen.EncoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		f := flow.Flow{SrcAddr: src, DstAddr: netip.MustParseAddr("198.51.100.9"), SrcPort: 40000, DstPort: port,
			Proto: 6, TCPFlags: flow.TCPSyn | flow.TCPAck, Packets: 1, Bytes: 44, RawPackets: 1, RawBytes: 44,
			TimeFlowStart: at, TimeFlowEnd: at}
		dgram, _ := enc.Encode(nil, []flow.Flow{f, f, f}, at) // three records: the exporter's clock is known
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", d.udp))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(dgram)
		c.Close()
	}
	for i, p := range []uint16{443, 80} {
		send(a, t0.Add(time.Duration(i)*time.Second), p)
	}
	a.waitMetric(t, "flowguard_engine_flows_total", 6)
	a.waitMetric(t, "flowguard_alerts_total", 2)
	// a saves after its flows, then b merges what a saved
	syncsA := a.metric(t, "flowguard_learned_state_syncs_total")
	a.waitMetric(t, "flowguard_learned_state_syncs_total", syncsA+2)
	syncsB := b.metric(t, "flowguard_learned_state_syncs_total")
	b.waitMetric(t, "flowguard_learned_state_syncs_total", syncsB+2)
	for i, p := range []uint16{443, 80, 22} {
		send(b, t0.Add(time.Duration(2+i)*time.Second), p)
	}
	b.waitMetric(t, "flowguard_engine_flows_total", 9)
	b.waitMetric(t, "flowguard_alerts_total", 1)
	time.Sleep(200 * time.Millisecond)
	if n := b.metric(t, "flowguard_alerts_total"); n != 1 {
		t.Fatalf("b raised %v alerts, want 1 (port 22; 443 and 80 were learned by a)", n)
	}
	got := alertsOf(t, b.stdout.Bytes())
	if len(got) != 1 || fmt.Sprint(got[0]["new_term"].(map[string]any)["term"]) != "22" {
		t.Fatalf("b's alerts: %v", got)
	}
}
