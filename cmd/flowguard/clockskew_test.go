package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/daemon"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
)

// exportV5 sends flows as NetFlow v5 from laddr to the daemon, stamped by
// an exporter whose clock reads now+skew.
func exportV5(t *testing.T, d *daemonProc, laddr string, flows []flow.Flow, skew time.Duration) {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(laddr)),
		net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(d.udp))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now().Add(skew)
	enc, err := gen.NewEncoder(gen.NetFlowV5, gen.EncoderConfig{Boot: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		flows[i].TimeFlowStart, flows[i].TimeFlowEnd = now, now
	}
	var buf []byte
	for len(flows) > 0 {
		var n int
		buf, n = enc.Encode(buf[:0], flows, now)
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		flows = flows[n:]
		time.Sleep(time.Millisecond) // bounded: a few hundred datagrams at most
	}
}

func probes(src, dst string, n int) []flow.Flow {
	out := make([]flow.Flow, n)
	for i := range out {
		f := &out[i]
		f.SrcAddr, f.DstAddr = netip.MustParseAddr(src), netip.MustParseAddr(dst)
		f.SrcPort, f.DstPort = 40000, uint16(1+i)
		f.SetProto(flow.ProtoTCP)
		f.SetTCPFlags(flow.TCPSyn)
		f.RawPackets, f.RawBytes, f.SamplingRate = 1, 44, 1
		f.Renormalise()
	}
	return out
}

// status reads /api/status's "time" object.
func (d *daemonProc) timeStatus(t *testing.T) daemon.TimeObject {
	t.Helper()
	resp, err := http.Get("http://" + d.http + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Time daemon.TimeObject `json:"time"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Time
}

// Two exporters, one with a clock two days ahead that speaks first, then
// a port scan from the well-clocked one: the scan alerts (on main it did
// not: the engine's clock was the largest stamp seen). Forged datagrams
// from 1,100 more addresses, each with its own clock, do not grow the
// engine's source table past its bound (the last ones share "other") nor
// touch the exporter known before them; /api/status and /metrics show the
// clocks.
func TestRunExporterClockAhead(t *testing.T) {
	d := startDaemon(t, "")
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.60", "127.0.0.61", 3), 0) // known before the forgeries
	exportV5(t, d, "127.0.0.2:0", probes("127.0.0.40", "127.0.0.41", 30), 48*time.Hour)
	for i := range 1100 {
		a := netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
		exportV5(t, d, netip.AddrPortFrom(a, 0).String(), probes("127.0.0.50", "127.0.0.51", 1), time.Duration(i)*time.Minute)
	}
	exportV5(t, d, "127.0.0.3:0", probes("127.0.0.5", "127.0.0.9", 300), 0)
	want := float64(3 + 30 + 1100 + 300)
	for i := 0; i < 100 && d.metric(t, "flowguard_engine_flows_total") < want; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if got := d.metric(t, "flowguard_engine_flows_total"); got != want {
		t.Fatalf("engine saw %v flows, want %v", got, want)
	}
	ts := d.timeStatus(t)
	if w, err := time.Parse(time.RFC3339Nano, ts.Watermark); err != nil || time.Since(w).Abs() > time.Minute {
		t.Errorf("watermark %q is not the collector's clock (now %v)", ts.Watermark, time.Now().UTC())
	}
	// The engine keeps clocks for 1024 sources (engine's TestSourcesBounded);
	// /api/status names ingest.metrics_exporters (64) of them and sums the
	// rest as "other".
	if n := len(ts.Sources); n != 65 || ts.Sources[n-1].Source != "other" {
		t.Errorf("%d sources, want 64 and \"other\"", n)
	}
	var flows uint64
	wellClocked := false
	for _, s := range ts.Sources {
		flows += s.Flows
		if s.Source == "NETFLOW_V5 127.0.0.3" {
			wellClocked = true
			if s.Flows != 303 || s.Late != 0 || s.Future != 0 {
				t.Errorf("the well-clocked exporter: %+v, want 303 flows, none late or future", s)
			}
		}
	}
	if !wellClocked {
		t.Error("the busiest exporter is not named in /api/status")
	}
	if flows != uint64(want) {
		t.Errorf("sources sum to %d flows, want %v", flows, want)
	}
	if d.metric(t, "flowguard_watermark_seconds") == 0 {
		t.Error("no flowguard_watermark_seconds")
	}
	d.stop(t)
	scans := 0
	for _, a := range alertsOf(t, d.stdout.Bytes()) {
		if a["rule"] == "vertical-port-scan" && fmt.Sprint(group(a)) == "map[dst_addr:127.0.0.9 src_addr:127.0.0.5]" {
			scans++
		}
	}
	if scans != 1 {
		t.Errorf("%d scan alerts, want 1; stderr:\n%s", scans, d.stderr.String())
	}
}
