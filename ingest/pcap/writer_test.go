package pcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/flow"
)

// This file writes captures for the tests: link-layer and file-format
// variants of the real captures, and bigger inputs for benchmarks.

func pcapHeader(big bool, link uint32) []byte {
	var o binary.ByteOrder = binary.LittleEndian
	if big {
		o = binary.BigEndian
	}
	h := make([]byte, 24)
	o.PutUint32(h, magicNanos)
	o.PutUint16(h[4:], 2)
	o.PutUint16(h[6:], 4)
	o.PutUint32(h[16:], 262144)
	o.PutUint32(h[20:], link)
	return h
}

// pcapWriter writes a nanosecond pcap file.
type pcapWriter struct {
	w   io.Writer
	big bool
}

func newPcapWriter(w io.Writer, link uint32) *pcapWriter {
	w.Write(pcapHeader(false, link))
	return &pcapWriter{w: w}
}

func (p *pcapWriter) write(ts int64, data []byte, wire uint32) {
	var o binary.ByteOrder = binary.LittleEndian
	if p.big {
		o = binary.BigEndian
	}
	var h [16]byte
	o.PutUint32(h[0:], uint32(ts/1e9))
	o.PutUint32(h[4:], uint32(ts%1e9))
	o.PutUint32(h[8:], uint32(len(data)))
	o.PutUint32(h[12:], wire)
	p.w.Write(h[:])
	p.w.Write(data)
}

// frame is one packet of a test capture, copied.
type frame struct {
	ts   int64
	link uint32
	data []byte
	wire uint32
}

func readFrames(t testing.TB, name string) []frame {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fr fileReader
	if err := fr.open(f, 0); err != nil {
		t.Fatal(err)
	}
	var out []frame
	var rec record
	for {
		if err := fr.next(&rec); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, frame{rec.ts, rec.link, bytes.Clone(rec.data), rec.wire})
	}
}

// relink rewrites an Ethernet frame's header for another link type.
func relink(link uint32, eth []byte) []byte {
	et := eth[12:14]
	ipp := eth[14:]
	v6 := et[0] == 0x86
	af := func(big bool, n uint32) []byte {
		b := make([]byte, 4)
		if big {
			binary.BigEndian.PutUint32(b, n)
		} else {
			binary.LittleEndian.PutUint32(b, n)
		}
		return b
	}
	var h []byte
	switch link {
	case LinkEthernet: // with QinQ: an 802.1ad tag, then an 802.1Q tag
		h = append(append([]byte{}, eth[:12]...), 0x88, 0xa8, 0, 100, 0x81, 0x00, 0, 200, et[0], et[1])
	case LinkRaw, LinkRawOld, LinkIPv4, LinkIPv6:
	case LinkNull:
		if v6 {
			h = af(false, 30) // macOS AF_INET6, little-endian host
		} else {
			h = af(false, 2)
		}
	case LinkLoop:
		if v6 {
			h = af(true, 24)
		} else {
			h = af(true, 2)
		}
	case LinkSLL:
		h = []byte{0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, et[0], et[1]}
	case LinkSLL2:
		h = []byte{et[0], et[1], 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}
	}
	return append(h, ipp...)
}

// Every link type decodes the same packets to the same flows: the captures'
// IP packets are re-framed for each and compared with tshark's totals.
func TestLinkTypes(t *testing.T) {
	for _, name := range []string{"scan.pcap", "ipv6.pcap"} {
		frames := readFrames(t, name)
		want := golden(t, name)
		for _, link := range []uint32{LinkEthernet, LinkRaw, LinkRawOld, LinkIPv4, LinkIPv6, LinkNull, LinkLoop, LinkSLL, LinkSLL2} {
			if link == LinkIPv4 && name == "ipv6.pcap" || link == LinkIPv6 && name == "scan.pcap" {
				continue
			}
			var b bytes.Buffer
			w := newPcapWriter(&b, link)
			w.big = false
			for _, f := range frames {
				d := relink(link, f.data)
				w.write(f.ts, d, f.wire-uint32(len(f.data))+uint32(len(d)))
			}
			r, err := New(&b, name, Config{})
			if err != nil {
				t.Fatal(err)
			}
			flows := replay(t, r)
			if s := r.Stats(); s.Metered != uint64(len(frames)) {
				t.Errorf("%s as link %d: stats %+v", name, link, s)
			}
			diff(t, perTuple(flows), want)
		}
	}
}

// pcapngWriter writes a big-endian pcapng file with one interface whose
// timestamps count 2^-20 s, plus blocks the reader must skip.
func pcapngFile(frames []frame) []byte {
	o := binary.BigEndian
	var b bytes.Buffer
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		b.Write(o.AppendUint32(o.AppendUint32(nil, typ), n))
		b.Write(body)
		b.Write(o.AppendUint32(nil, n))
	}
	shb := o.AppendUint32(nil, ngByteOrder)
	shb = append(shb, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	block(blockSection, shb)
	idb := []byte{0, byte(frames[0].link), 0, 0, 0, 0, 0, 128}
	idb = append(idb, 0, 2, 0, 4, 'l', 'o', 0, 0)   // if_name
	idb = append(idb, 0, 9, 0, 1, 0x80|20, 0, 0, 0) // if_tsresol 2^-20
	idb = append(idb, 0, 0, 0, 0)
	block(blockInterface, idb)
	block(4, []byte{0, 1, 0, 4, 127, 0, 0, 1, 'l', 'o', 0, 0, 0, 0, 0, 0}) // name resolution
	for _, f := range frames {
		ts := uint64(f.ts/1e9)<<20 | uint64(f.ts%1e9)<<20/1e9
		epb := o.AppendUint32(nil, 0)
		epb = o.AppendUint32(epb, uint32(ts>>32))
		epb = o.AppendUint32(epb, uint32(ts))
		epb = o.AppendUint32(epb, uint32(len(f.data)))
		epb = o.AppendUint32(epb, f.wire)
		block(blockEnhanced, append(epb, f.data...))
	}
	block(5, make([]byte, 16)) // interface statistics
	return b.Bytes()
}

func TestPcapngVariant(t *testing.T) {
	frames := readFrames(t, "scan.pcap")
	r, err := New(bytes.NewReader(pcapngFile(frames)), "ng", Config{})
	if err != nil {
		t.Fatal(err)
	}
	flows := replay(t, r)
	s := r.Stats()
	if s.Metered != uint64(len(frames)) {
		t.Errorf("stats %+v", s)
	}
	// 2^-20 s ticks: within a microsecond of the original times.
	if d := s.First.UnixNano() - frames[0].ts; d > 0 || d < -1000 {
		t.Errorf("first time off by %dns", d)
	}
	diff(t, perTuple(flows), golden(t, "scan.pcap"))
}

// bigCapture builds a pcap of the test captures' packets repeated reps
// times at 10k packets/s of event time (so that idle timeouts expire flows
// on the way). With shift, each repetition comes from other addresses and
// brings new flows (a scan-heavy capture, 0.8 flows per packet); without,
// the repetitions extend the same flows.
func bigCapture(t testing.TB, reps int, shift bool) []byte {
	var frames []frame
	for _, name := range []string{"scan.pcap", "udp_icmp_nano.pcap", "ipv6.pcap", "dumpcap.pcapng"} {
		frames = append(frames, readFrames(t, name)...)
	}
	base := frames[0].ts
	var b bytes.Buffer
	w := newPcapWriter(&b, LinkEthernet)
	for rep := range reps {
		for k, f := range frames {
			d := bytes.Clone(f.data)
			switch {
			case !shift:
			case d[12] == 0x08: // IPv4: shift the client's address, 127.0.0.5 → 127.x.y.5
				if d[14+12+3] == 5 {
					d[14+12+1], d[14+12+2] = byte(rep>>8), byte(rep)
				} else if d[14+16+3] == 5 {
					d[14+16+1], d[14+16+2] = byte(rep>>8), byte(rep)
				}
			case d[12] == 0x86: // IPv6: ::1 → ::rep:1 on both sides
				d[14+8+13], d[14+8+14] = byte(rep>>8), byte(rep)
				d[14+24+13], d[14+24+14] = byte(rep>>8), byte(rep)
			}
			w.write(base+int64(rep*len(frames)+k)*100e3, d, f.wire)
		}
	}
	return b.Bytes()
}

// BenchmarkReplay replays a 300k-packet file (600 packets repeated 500
// times, about 35 MB) end to end into a no-op handler.
func BenchmarkReplay(b *testing.B) {
	for _, c := range []struct {
		name  string
		shift bool
	}{{"new-flows", true}, {"same-flows", false}} {
		b.Run(c.name, func(b *testing.B) { benchmarkReplay(b, c.shift) })
	}
}

func benchmarkReplay(b *testing.B, shift bool) {
	const reps = 500
	path := filepath.Join(b.TempDir(), "big.pcap")
	if err := os.WriteFile(path, bigCapture(b, reps, shift), 0o644); err != nil {
		b.Fatal(err)
	}
	var packets, flows uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(path, Config{})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Run(context.Background(), func(f []flow.Flow) {}); err != nil {
			b.Fatal(err)
		}
		s := r.Stats()
		packets += s.Packets
		flows += s.Meter.Flows
		r.Close()
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(flows)/float64(packets), "flows/packet")
}

// BenchmarkDecode measures the header decoder alone on the captures' frames.
func BenchmarkDecode(b *testing.B) {
	frames := readFrames(b, "scan.pcap")
	var d decoded
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := &frames[i%len(frames)]
		decode(f.link, f.data, f.wire, &d)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
