package pcap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/meter"
)

// The captures in testdata were made on loopback (see testdata/README.md).
// Packet counts are what `tcpdump -r FILE | wc -l` and `capinfos -c FILE`
// print; Bytes (wire lengths) is the byte column of
// `tshark -r FILE -q -z io,stat,0` (for udp_icmp, whose io,stat interval
// misses its last packets, capinfos' "Data size"). Flows is the number of
// lines of FILE.flows, the per-direction 5-tuples that testdata/golden.sh
// derives with tshark: every capture is shorter than the idle timeout, so
// each 5-tuple is one flow.
var captures = []struct {
	file          string
	link          uint32
	packets       uint64
	bytes         uint64
	flows         uint64
	first, last   string // first and last packet time (from tshark -t ud)
	nanosecondish bool   // timestamps have sub-microsecond digits
}{
	{"scan.pcap", LinkEthernet, 425, 51635, 404, "", "", false},
	{"udp_icmp_nano.pcap", LinkEthernet, 90, 5480, 34, "2026-11-27T21:23:42.49319413Z", "2026-11-27T21:23:43.69379665Z", true},
	{"udp_icmp.pcapng", LinkEthernet, 90, 5480, 34, "2026-11-27T21:23:42.49319413Z", "2026-11-27T21:23:43.69379665Z", true},
	{"any_sll.pcap", LinkSLL, 48, 31455, 8, "", "", false},
	{"any_sll2.pcap", LinkSLL2, 48, 31647, 8, "", "", false},
	{"ipv6.pcap", LinkEthernet, 58, 32653, 28, "", "", false},
	{"dumpcap.pcapng", LinkEthernet, 27, 1916, 12, "", "", false},
}

// tuple is a flow's key as the golden files write it.
func tuple(f *flow.Flow) string {
	return fmt.Sprintf("%d %s %d %s %d", f.Proto, f.SrcAddr, f.SrcPort, f.DstAddr, f.DstPort)
}

type volume struct{ packets, bytes uint64 }

// golden reads testdata/NAME.flows.
func golden(t *testing.T, name string) map[string]volume {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", strings.TrimSuffix(name, filepath.Ext(name))+".flows"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]volume{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		var v volume
		if _, err := fmt.Sscan(fs[5], &v.packets); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscan(fs[6], &v.bytes); err != nil {
			t.Fatal(err)
		}
		want[strings.Join(fs[:5], " ")] = v
	}
	return want
}

// replay runs a capture through a Reader and returns copies of its flows.
func replay(t testing.TB, r *Reader) []flow.Flow {
	t.Helper()
	var flows []flow.Flow
	if err := r.Run(context.Background(), func(b []flow.Flow) { flows = append(flows, b...) }); err != nil {
		t.Fatal(err)
	}
	return flows
}

// perTuple sums flows by 5-tuple.
func perTuple(flows []flow.Flow) map[string]volume {
	got := map[string]volume{}
	for i := range flows {
		k := tuple(&flows[i])
		v := got[k]
		v.packets += flows[i].Packets
		v.bytes += flows[i].Bytes
		got[k] = v
	}
	return got
}

func diff(t *testing.T, got, want map[string]volume) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	n := 0
	for _, k := range keys {
		if got[k] != want[k] && n < 10 {
			t.Errorf("%s: got %+v, want (tshark) %+v", k, got[k], want[k])
			n++
		}
	}
}

func TestCaptures(t *testing.T) {
	for _, c := range captures {
		t.Run(c.file, func(t *testing.T) {
			r, err := Open(filepath.Join("testdata", c.file), Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			flows := replay(t, r)
			s := r.Stats()
			if s.Packets != c.packets || s.Metered != c.packets || s.Bytes != c.bytes {
				t.Errorf("packets %d metered %d bytes %d, want %d %d %d", s.Packets, s.Metered, s.Bytes, c.packets, c.packets, c.bytes)
			}
			if s.Malformed+s.Truncated+s.NonIP+s.UnsupportedLink+s.Datagrams != 0 {
				t.Errorf("skipped packets: %+v", s)
			}
			if s.BytesRead != s.Size || s.Size == 0 {
				t.Errorf("BytesRead %d of Size %d", s.BytesRead, s.Size)
			}
			if uint64(len(flows)) != c.flows || s.Meter.Flows != c.flows || s.Ingest().Flows != c.flows {
				t.Errorf("%d flows (stats %d), want %d", len(flows), s.Meter.Flows, c.flows)
			}
			if c.first != "" && (s.First.Format(time.RFC3339Nano) != c.first || s.Last.Format(time.RFC3339Nano) != c.last) {
				t.Errorf("first/last = %v %v, want %s %s", s.First.Format(time.RFC3339Nano), s.Last.Format(time.RFC3339Nano), c.first, c.last)
			}
			diff(t, perTuple(flows), golden(t, c.file))
			for i := range flows {
				f := &flows[i]
				if f.Type != flow.TypePcap || f.SamplingRate != 1 || f.TimeFlowStart.Before(s.First) || f.TimeFlowEnd.After(s.Last) ||
					f.TimeFlowEnd.Before(f.TimeFlowStart) || f.TimeReceived.Before(f.TimeFlowEnd) {
					t.Errorf("flow %d = %+v", i, f)
				}
			}
		})
	}
}

// The SYN scan: nmap from 127.0.0.5:36333 to ports 1-200 of 127.0.0.9 with
// one open port (80), then two HTTP fetches.
func TestScanFlows(t *testing.T) {
	r, err := Open("testdata/scan.pcap", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ports := map[uint16]bool{}
	var resets int
	for _, f := range replay(t, r) {
		if f.SrcPort == 36333 && f.SrcAddr == netip.MustParseAddr("127.0.0.5") {
			ports[f.DstPort] = true
			if f.SYN != true || f.Packets > 2 {
				t.Errorf("probe flow %+v", f)
			}
		}
		if f.SrcPort != 80 && f.DstPort == 36333 && f.RST && f.ACK {
			resets++
		}
	}
	if len(ports) != 200 || resets != 199 {
		t.Errorf("%d ports probed, %d closed answers; want 200, 199", len(ports), resets)
	}
}

func TestDatagramHook(t *testing.T) {
	var got []string
	r, err := Open("testdata/udp_icmp.pcapng", Config{
		Datagram: func(ts time.Time, src, dst netip.AddrPort, payload []byte) bool {
			if dst.Port() != 2055 {
				return false
			}
			got = append(got, fmt.Sprintf("%s %s %s %d %x", ts.Format(time.RFC3339), src, dst, len(payload), payload[:4]))
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	flows := replay(t, r)
	s := r.Stats()
	// 5 datagrams of 72 bytes (a NetFlow v5 header's start, then zeros) from
	// 127.0.0.5:40555 to 127.0.0.9:2055; the ICMP port-unreachable answers
	// to them are metered as usual.
	if s.Datagrams != 5 || s.Metered != 85 || len(got) != 5 {
		t.Fatalf("stats %+v, got %v", s, got)
	}
	if got[0] != "2026-11-27T21:23:43Z 127.0.0.5:40555 127.0.0.9:2055 72 00050001" {
		t.Errorf("datagram = %q", got[0])
	}
	want := golden(t, "udp_icmp.pcapng")
	delete(want, "17 127.0.0.5 40555 127.0.0.9 2055")
	diff(t, perTuple(flows), want)
}

func TestCaptureType(t *testing.T) {
	r, err := Open("testdata/dumpcap.pcapng", Config{Meter: meter.Config{Type: flow.TypeCapture}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if f := replay(t, r); f[0].Type != flow.TypeCapture {
		t.Errorf("type = %q", f[0].Type)
	}
	if _, err := Open("testdata/dumpcap.pcapng", Config{Meter: meter.Config{IdleTimeout: -1}}); err == nil || !strings.Contains(err.Error(), "idle_timeout") {
		t.Errorf("bad meter config: %v", err)
	}
}

func TestRunCancelled(t *testing.T) {
	data := bigCapture(t, 3, true)
	r, err := New(bytes.NewReader(data), "big", Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx, func([]flow.Flow) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err == nil {
		t.Error("second Run accepted")
	}
}

// Every prefix of a capture either ends at a record boundary (nil) or
// reports a cut file; what came before the cut is metered.
func TestTruncatedFiles(t *testing.T) {
	for _, name := range []string{"scan.pcap", "udp_icmp.pcapng"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var prev uint64
		for n := 0; n < len(data); n += 1 + n/50 {
			r, err := New(bytes.NewReader(data[:n]), name, Config{})
			if err != nil {
				if n >= 24+4 && !strings.HasSuffix(name, "ng") || n >= 200 {
					t.Fatalf("%s[:%d]: New: %v", name, n, err)
				}
				continue
			}
			err = r.Run(context.Background(), func([]flow.Flow) {})
			s := r.Stats()
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s[:%d]: %v", name, n, err)
			}
			if s.Packets < prev || s.Meter.Packets != s.Packets {
				t.Errorf("%s[:%d]: %d packets after %d, %d metered", name, n, s.Packets, prev, s.Meter.Packets)
			}
			prev = s.Packets
		}
	}
}

func TestGarbage(t *testing.T) {
	for _, in := range []string{"", "abc", "not a capture file at all", "\xd4\xc3\xb2\xa1"} {
		if _, err := New(strings.NewReader(in), "x", Config{}); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	// A valid header then a record that claims 1 GB.
	hdr := pcapHeader(false, LinkEthernet)
	bad := append(hdr, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x40)
	r, err := New(bytes.NewReader(bad), "bad", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), func([]flow.Flow) {}); !errors.Is(err, errCorrupt) {
		t.Errorf("Run = %v", err)
	}
	// pcapng with a block of impossible length after the section header.
	ng, _ := os.ReadFile("testdata/udp_icmp.pcapng")
	ng = append(ng[:0:0], ng...)
	ng[0x6c+4] = 13 // the interface block's length
	if r, err := New(bytes.NewReader(ng), "ng", Config{}); err != nil {
		t.Fatal(err)
	} else if err := r.Run(context.Background(), func([]flow.Flow) {}); !errors.Is(err, errCorrupt) {
		t.Errorf("Run = %v", err)
	}
	// Random packet bodies inside valid framing: counted, never fatal.
	var b bytes.Buffer
	w := newPcapWriter(&b, LinkEthernet)
	x := uint32(7)
	for i := range 2000 {
		p := make([]byte, i%130)
		for j := range p {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			p[j] = byte(x)
		}
		if len(p) > 14 {
			p[12], p[13] = 0x08, 0x00
			if i%2 == 0 {
				p[12], p[13] = 0x86, 0xdd
			}
			p[14] = byte(0x40 + 0x20*(i%2) + i%16)
		}
		w.write(int64(i)*1e6, p, uint32(len(p)))
	}
	r, err = New(&b, "random", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), func([]flow.Flow) {}); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Packets != 2000 || s.Malformed+s.Truncated+s.NonIP == 0 {
		t.Errorf("stats = %+v", s)
	}
}

// IsCapture recognises every capture in testdata and nothing else.
func TestIsCapture(t *testing.T) {
	for _, c := range captures {
		data, _ := os.ReadFile(filepath.Join("testdata", c.file))
		if !IsCapture(data) {
			t.Errorf("%s not recognised", c.file)
		}
	}
	for _, s := range []string{"", "{\"type\":", "ts,te,td", "\x00\x00\x00\x00"} {
		if IsCapture([]byte(s)) {
			t.Errorf("%q recognised", s)
		}
	}
}
