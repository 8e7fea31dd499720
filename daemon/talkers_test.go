package daemon

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/gen"
	"github.com/flowguard/flowguard/talkers"
)

// A spray of spoofed sources and ports sent over loopback to a listener
// whose flows feed the top talkers (as `flowguard run` wires them) leaves
// the talkers within the room they allocated at start, far fewer keys than
// were sprayed, and the one heavy source on top with its exact totals.
func TestTalkersSprayOverLoopbackBounded(t *testing.T) {
	tk := talkers.New(0, nil)
	td := runDaemonWith(t, "", func(d *Daemon) { d.ObserveFlows(tk.Handle) })
	bound := tk.MaxKeys()

	const spray = 60000 // distinct sources, and as many distinct ports
	heavy := netip.MustParseAddr("10.9.9.9")
	now := time.Now()
	flows := make([]flow.Flow, 0, spray+spray/100)
	for i := range spray {
		f := flow.Flow{SrcAddr: netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}),
			DstAddr: netip.MustParseAddr("10.0.0.1"), SrcPort: 40000, DstPort: uint16(i + 1),
			Proto: 17, RawBytes: 100, RawPackets: 1, TimeFlowStart: now, TimeFlowEnd: now}
		flows = append(flows, f)
		if i%100 == 0 {
			f.SrcAddr, f.DstPort, f.RawBytes, f.RawPackets = heavy, 443, 1e6, 1000
			flows = append(flows, f)
		}
	}
	enc, err := gen.NewEncoder(gen.NetFlowV9, gen.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: td.udp})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf []byte
	for rest := flows; len(rest) > 0; {
		var n int
		buf, n = enc.Encode(buf[:0], rest, now)
		rest = rest[n:]
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Microsecond) // within the socket buffer, however slow the machine
	}
	td.waitMetric(t, "flowguard_engine_flows_total", float64(len(flows)))

	s := tk.Stats()
	if s.Flows != uint64(len(flows)) {
		t.Fatalf("the talkers counted %d flows, %d sent", s.Flows, len(flows))
	}
	if distinct := 2 * spray; bound >= distinct {
		t.Fatalf("room for %d keys: the spray of %d distinct keys does not test the bound", bound, distinct)
	}
	t.Logf("%d flows: %d keys held, room for %d, %d pruned", s.Flows, s.Keys, bound, s.Pruned)
	if s.Keys > bound || s.Pruned == 0 {
		t.Errorf("%d keys held (room %d), %d pruned: want at most the room, some pruned", s.Keys, bound, s.Pruned)
	}
	top := tk.Top(time.Minute, talkers.ByBytes, 1)
	want := talkers.Row{Key: heavy.String(), Bytes: spray / 100 * 1e6, Packets: spray / 100 * 1000, Flows: spray / 100}
	if len(top.Sources) != 1 || top.Sources[0] != want {
		t.Errorf("top source %+v, want %+v", top.Sources, want)
	}
}
