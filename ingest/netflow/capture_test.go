package netflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/pcap"
)

// replay decodes every datagram of a capture of export traffic through d,
// returning copies of the flows and the first decode error.
func replay(t testing.TB, path string, d *Decoder) []flow.Flow {
	t.Helper()
	var all, out []flow.Flow
	var firstErr error
	r, err := pcap.Open(path, pcap.Config{Datagram: func(ts time.Time, src, dst netip.AddrPort, payload []byte) bool {
		var err error
		out, err = d.Decode(src, ts, payload, out[:0])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		all = append(all, out...)
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	if firstErr != nil {
		t.Errorf("%s: %v", path, firstErr)
	}
	return all
}

// tuple keys flows by direction and 5-tuple.
type tuple struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
}

func (k tuple) String() string {
	return fmt.Sprintf("%v:%d->%v:%d/%d", k.src, k.sport, k.dst, k.dport, k.proto)
}

type volume struct{ flows, packets, bytes uint64 }

func sumFlows(fs []flow.Flow) map[tuple]volume {
	m := make(map[tuple]volume)
	for _, f := range fs {
		k := tuple{f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort, f.Proto}
		v := m[k]
		v.flows++
		v.packets += f.Packets
		v.bytes += f.Bytes
		m[k] = v
	}
	return m
}

var nfdumpProto = map[string]uint8{"TCP": 6, "UDP": 17, "ICMP": 1, "ICMP6": 58}

// readNfdump reads NAME.nfdump.csv (ts,te,sa,da,sp,dp,pr,ipkt,ibyt as
// make-captures.sh cuts nfdump's CSV) into per-tuple volumes, the flow
// start times by tuple (second resolution, as nfdump prints them) too.
func readNfdump(t testing.TB, path string) (map[tuple]volume, map[tuple]string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	m := make(map[tuple]volume)
	starts := make(map[tuple]string)
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		c := strings.Split(sc.Text(), ",")
		if len(c) != 9 {
			t.Fatalf("%s: %q: want 9 columns", path, sc.Text())
		}
		pr, ok := nfdumpProto[c[6]]
		if !ok {
			n, err := strconv.Atoi(c[6])
			if err != nil {
				t.Fatalf("%s: protocol %q", path, c[6])
			}
			pr = uint8(n)
		}
		sp, _ := strconv.Atoi(c[4])
		dp, _ := strconv.Atoi(c[5])
		pk, _ := strconv.ParseUint(c[7], 10, 64)
		by, _ := strconv.ParseUint(c[8], 10, 64)
		k := tuple{netip.MustParseAddr(c[2]), netip.MustParseAddr(c[3]), uint16(sp), uint16(dp), pr}
		v := m[k]
		v.flows++
		v.packets += pk
		v.bytes += by
		m[k] = v
		starts[k] = c[0]
	}
	return m, starts
}

// protoTotals sums raw packets and bytes per protocol, as softflowd's exit
// summary prints them.
func protoTotals(fs []flow.Flow) map[uint8][2]uint64 {
	m := make(map[uint8][2]uint64)
	for _, f := range fs {
		v := m[f.Proto]
		v[0] += f.RawPackets
		v[1] += f.RawBytes
		m[f.Proto] = v
	}
	return m
}

// rawSums is sumFlows over the raw (unrenormalised) volumes, which is what
// nfdump prints.
func rawSums(fs []flow.Flow) map[tuple]volume {
	raw := make([]flow.Flow, len(fs))
	copy(raw, fs)
	for i := range raw {
		raw[i].Packets, raw[i].Bytes = raw[i].RawPackets, raw[i].RawBytes
	}
	return sumFlows(raw)
}

// The captures were made by make-captures.sh: softflowd 1.1.0 reading the
// same 573-packet pcap exported in each format while tcpdump recorded the
// datagrams and nfcapd (nfdump 1.7.1) decoded them. The protocol totals are
// softflowd's own exit summary (NAME.softflowd.txt); the per 5-tuple
// packets and bytes are nfdump's (NAME.nfdump.csv).
func TestCaptures(t *testing.T) {
	v4 := map[uint8][2]uint64{6: {425, 45685}, 17: {35, 1340}, 1: {55, 2880}}
	v46 := map[uint8][2]uint64{6: {483, 77526}, 17: {35, 1340}, 1: {55, 2880}} // + IPv6 TCP
	sampled := map[uint8][2]uint64{6: {122, 33145}, 1: {22, 1236}}             // softflowd -s 4: what it sampled
	cases := []struct {
		name      string
		ref       string // nfdump reference; nfcapd 1.7.1 decodes only 19 of the v1 flows, so v1 is checked against the v5 export of the same flows
		flows     int
		totals    map[uint8][2]uint64
		typ       string
		rate      uint32
		templates int
		startRes  time.Duration // how far the start time may be from nfdump's / the milli export's
	}{
		// v1/v5: sysUptime and first switched are both whole ms: up to 2 ms off.
		{"export-v1", "export-v5", 438, v4, flow.TypeNetFlowV1, 1, 0, 2 * time.Millisecond},
		{"export-v5", "export-v5", 438, v4, flow.TypeNetFlowV5, 1, 0, 2 * time.Millisecond},
		{"export-v9", "export-v9", 466, v46, flow.TypeNetFlowV9, 1, 5, time.Second}, // v9's header has whole seconds only
		{"export-ipfix", "export-ipfix", 466, v46, flow.TypeIPFIX, 1, 5, time.Millisecond},
		{"export-ipfix-milli", "export-ipfix-milli", 466, v46, flow.TypeIPFIX, 1, 5, 0},
		{"export-ipfix-nano", "export-ipfix-nano", 466, v46, flow.TypeIPFIX, 1, 5, time.Millisecond},
		{"export-v9-sampled", "export-v9-sampled", 116, sampled, flow.TypeNetFlowV9, 4, 5, time.Second},
		{"export-ipfix-sampled", "export-ipfix-sampled", 116, sampled, flow.TypeIPFIX, 4, 5, time.Millisecond},
	}
	// Flow start times of the IPFIX export with flowStartMilliseconds
	// (absolute, exact to the ms), per tuple: the others must agree.
	milli := map[tuple]time.Time{}
	for _, f := range replay(t, "testdata/export-ipfix-milli.pcap", NewDecoder(Config{})) {
		milli[tuple{f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort, f.Proto}] = f.TimeFlowStart
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			fs := replay(t, "testdata/"+c.name+".pcap", d)
			if len(fs) != c.flows {
				t.Errorf("%d flows, want %d", len(fs), c.flows)
			}
			want, starts := readNfdump(t, "testdata/"+c.ref+".nfdump.csv")
			got := rawSums(fs)
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%v: got %+v, nfdump %+v", k, got[k], w)
				}
			}
			for k, g := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("%v: %+v not in nfdump's output", k, g)
				}
			}
			if tot := protoTotals(fs); fmt.Sprint(tot) != fmt.Sprint(c.totals) {
				t.Errorf("protocol totals %v, softflowd says %v", tot, c.totals)
			}
			for _, f := range fs {
				k := tuple{f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort, f.Proto}
				if f.Type != c.typ || f.SamplingRate != c.rate || f.Packets != f.RawPackets*uint64(c.rate) ||
					f.Bytes != f.RawBytes*uint64(c.rate) || f.SamplerAddress != netip.MustParseAddr("127.0.0.1") {
					t.Fatalf("flow %+v: want type %s, rate %d, renormalised, sampler 127.0.0.1", f, c.typ, c.rate)
				}
				if f.TimeFlowEnd.Before(f.TimeFlowStart) || f.TimeReceived.IsZero() {
					t.Fatalf("flow %+v: times", f)
				}
				if m, ok := milli[k]; ok {
					if d := f.TimeFlowStart.Sub(m); d < -c.startRes || d > c.startRes {
						t.Errorf("%v: start %v, flowStartMilliseconds says %v", k, f.TimeFlowStart, m)
					}
				} else if c.rate == 1 {
					t.Errorf("%v: not in the milli export", k)
				}
				// nfdump prints times it decodes (v5, flowStartMilliseconds)
				// to the second; 1970 where it does not (sysUptime-relative
				// v9/IPFIX from softflowd, nanoseconds).
				if s := starts[k]; !strings.HasPrefix(s, "1970") && c.name != "export-v1" {
					ts, err := time.Parse(time.DateTime, s)
					if err != nil {
						t.Fatal(err)
					}
					if d := f.TimeFlowStart.Truncate(time.Second).Sub(ts); d < -time.Second || d > time.Second {
						t.Errorf("%v: start %v, nfdump %v", k, f.TimeFlowStart, ts)
					}
				}
			}
			st := d.Stats()
			if len(st.Exporters) != 1 {
				t.Fatalf("stats %+v", st)
			}
			es := st.Exporters[0]
			if es.Flows != uint64(c.flows) || es.Errors != 0 || es.LostFlows != 0 || es.LostPackets != 0 ||
				es.TemplateMisses != 0 || es.Templates != c.templates || es.SamplingRate != c.rate || es.Restarts != 0 {
				t.Errorf("stats %+v", es)
			}
		})
	}
}

// datagrams returns the payloads and times of a capture's datagrams.
func datagrams(t testing.TB, path string) (payloads [][]byte, times []time.Time) {
	t.Helper()
	r, err := pcap.Open(path, pcap.Config{Datagram: func(ts time.Time, src, dst netip.AddrPort, payload []byte) bool {
		payloads = append(payloads, append([]byte(nil), payload...))
		times = append(times, ts)
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	return payloads, times
}

var testExporter = netip.MustParseAddrPort("192.0.2.1:40000")

// Data that arrives before its template waits in the pending buffer and is
// decoded by the datagram that brings the template.
func TestPendingUntilTemplate(t *testing.T) {
	for _, name := range []string{"export-v9", "export-ipfix"} {
		t.Run(name, func(t *testing.T) {
			dgs, times := datagrams(t, "testdata/"+name+".pcap")
			d := NewDecoder(Config{})
			var all []flow.Flow
			// Every datagram but the first (which holds the templates), then the first.
			for i := 1; i < len(dgs); i++ {
				out, err := d.Decode(testExporter, times[i], dgs[i], nil)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, out...)
			}
			if len(all) != 0 {
				t.Fatalf("%d flows decoded without templates", len(all))
			}
			st := d.Stats()
			if st.Pending == 0 || st.Exporters[0].TemplateMisses == 0 {
				t.Fatalf("nothing pending: %+v", st)
			}
			out, err := d.Decode(testExporter, times[0], dgs[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out...)
			if len(all) != 466 {
				t.Errorf("%d flows, want 466", len(all))
			}
			if st := d.Stats(); st.Pending != 0 || st.Exporters[0].PendingDropped != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A full pending buffer drops (and counts) the oldest set; PendingMax < 0
// holds nothing.
func TestPendingBounded(t *testing.T) {
	dgs, times := datagrams(t, "testdata/export-v9.pcap")
	for _, max := range []int{-1, 2} {
		d := NewDecoder(Config{PendingMax: max})
		sets := 0
		for i := 1; i < len(dgs); i++ {
			d.Decode(testExporter, times[i], dgs[i], nil)
		}
		st := d.Stats()
		sets = int(st.Exporters[0].TemplateMisses)
		held := max
		if held < 0 {
			held = 0
		}
		if st.Pending != held || int(st.Exporters[0].PendingDropped) != sets-held {
			t.Errorf("PendingMax %d: %+v", max, st)
		}
	}
}

// Templates expire when not refreshed within the TTL; their data is then
// held again until a new template comes.
func TestTemplateExpiry(t *testing.T) {
	dgs, times := datagrams(t, "testdata/export-ipfix.pcap")
	d := NewDecoder(Config{TemplateTTL: time.Minute})
	out, err := d.Decode(testExporter, times[0], dgs[0], nil)
	if err != nil || len(out) == 0 {
		t.Fatalf("%d flows, %v", len(out), err)
	}
	later := times[1].Add(2 * time.Minute)
	out, err = d.Decode(testExporter, later, dgs[1], nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("decoded %d flows with an expired template (%v)", len(out), err)
	}
	es := d.Stats().Exporters[0]
	if es.Templates != 0 || es.TemplateMisses == 0 {
		t.Errorf("stats %+v", es)
	}
	// The template comes again: the held data decodes.
	out, err = d.Decode(testExporter, later, dgs[0], nil)
	if err != nil || len(out) <= 24 {
		t.Errorf("%d flows after the refresh, %v", len(out), err)
	}
}

// Templates belong to the exporter's address and observation domain, not
// to its source port.
func TestTemplatesPerAddressNotPort(t *testing.T) {
	dgs, times := datagrams(t, "testdata/export-v9.pcap")
	d := NewDecoder(Config{})
	d.Decode(netip.MustParseAddrPort("192.0.2.1:1000"), times[0], dgs[0], nil)
	out, _ := d.Decode(netip.MustParseAddrPort("192.0.2.1:2000"), times[1], dgs[1], nil)
	if len(out) == 0 {
		t.Error("a new source port lost the templates")
	}
	out, _ = d.Decode(netip.MustParseAddrPort("192.0.2.2:1000"), times[1], dgs[1], nil)
	if len(out) != 0 {
		t.Error("another exporter used the templates")
	}
	// The same address over IPv4-mapped IPv6 (a dual-stack socket) is the same exporter.
	out, _ = d.Decode(netip.MustParseAddrPort("[::ffff:192.0.2.1]:3000"), times[2], dgs[2], nil)
	if len(out) == 0 {
		t.Error("a v4-mapped address is another exporter")
	}
}

// Loss: a missing datagram is counted (v5 and IPFIX count records, v9
// packets); reordered datagrams are not loss.
func TestSequenceLoss(t *testing.T) {
	for _, c := range []struct {
		name   string
		seqOff int // where the header's sequence number is
	}{
		{"export-v5", 16},
		{"export-ipfix", 8},
		{"export-v9", 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			dgs, times := datagrams(t, "testdata/"+c.name+".pcap")
			// Reordered: 0 1 3 2 4 5 ...
			d := NewDecoder(Config{})
			order := []int{0, 1, 3, 2}
			for i := 4; i < len(dgs); i++ {
				order = append(order, i)
			}
			for _, i := range order {
				if _, err := d.Decode(testExporter, times[i], dgs[i], nil); err != nil {
					t.Fatal(err)
				}
			}
			if es := d.Stats().Exporters[0]; es.LostFlows != 0 || es.LostPackets != 0 || es.Restarts != 0 {
				t.Errorf("reordered: %+v", es)
			}
			// Datagram 2 lost: its records (v5, IPFIX: the difference of
			// the sequence numbers around it) or 1 packet (v9).
			d = NewDecoder(Config{})
			for i := range dgs {
				if i != 2 {
					d.Decode(testExporter, times[i], dgs[i], nil)
				}
			}
			seq := func(i int) uint64 { return uint64(binary.BigEndian.Uint32(dgs[i][c.seqOff:])) }
			es := d.Stats().Exporters[0]
			switch c.name {
			case "export-v9":
				if es.LostPackets != 1 || es.LostFlows != 0 {
					t.Errorf("one datagram lost: %+v", es)
				}
			default:
				if es.LostFlows != seq(3)-seq(2) || es.LostFlows == 0 {
					t.Errorf("one datagram lost: %+v, want %d lost flows", es, seq(3)-seq(2))
				}
			}
		})
	}
}

// Stats may be read while Decode runs (go test -race).
func TestStatsConcurrent(t *testing.T) {
	dgs, times := datagrams(t, "testdata/export-ipfix.pcap")
	d := NewDecoder(Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var out []flow.Flow
		for round := range 20 {
			for i := range dgs {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(round)}), 9995)
				out, _ = d.Decode(src, times[i].Add(time.Duration(round)*time.Hour), dgs[i], out[:0])
			}
		}
	}()
	for {
		select {
		case <-done:
			if st := d.Stats(); len(st.Exporters) == 0 {
				t.Error("no exporters")
			}
			return
		default:
			d.Stats()
		}
	}
}
