package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/ingest/flowfile"
)

func run(t *testing.T, path string, opts Options) ([]flow.Flow, Format, Source) {
	t.Helper()
	src, format, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var fs []flow.Flow
	if err := src.Run(context.Background(), func(b []flow.Flow) { fs = append(fs, b...) }); err != nil {
		t.Fatal(err)
	}
	return fs, format, src
}

func gzipFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenDetects(t *testing.T) {
	quiet := Options{FlowFile: flowfile.Options{OnMalformed: func(l int, err error) { t.Errorf("line %d: %v", l, err) }}}
	for _, tc := range []struct {
		path  string
		want  Format
		flows int
	}{
		{"../flowfile/testdata/goflow2.jsonl", JSONLines, 36},
		{"../flowfile/testdata/flowguard.jsonl", JSONLines, 3},
		{"../flowfile/testdata/nfdump.csv", NfdumpCSV, 36},
		{"../flowfile/testdata/flows.pcap", Pcap, 0},
		{"../../testdata/normal.pcap", Pcap, 0},
	} {
		for _, gz := range []bool{false, true} {
			path := tc.path
			if gz {
				path = gzipFile(t, path)
			}
			fs, format, src := run(t, path, quiet)
			if format != tc.want {
				t.Errorf("%s: format %v, want %v", path, format, tc.want)
			}
			if tc.flows > 0 && len(fs) != tc.flows {
				t.Errorf("%s: %d flows, want %d", path, len(fs), tc.flows)
			}
			if len(fs) == 0 {
				t.Errorf("%s: no flows", path)
			}
			if st := src.Stats(); st.Flows != uint64(len(fs)) || st.Packets == 0 {
				t.Errorf("%s: stats %+v for %d flows", path, st, len(fs))
			}
		}
	}
}

func TestOpenPcapNG(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap (wireshark-common) not installed")
	}
	ng := filepath.Join(t.TempDir(), "flows.pcapng")
	if out, err := exec.Command("editcap", "-F", "pcapng", "../flowfile/testdata/flows.pcap", ng).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v: %s", err, out)
	}
	a, _, _ := run(t, "../flowfile/testdata/flows.pcap", Options{})
	b, format, _ := run(t, ng, Options{})
	if format != PcapNG || len(a) != len(b) || len(a) == 0 {
		t.Errorf("pcapng: format %v, %d flows vs %d from pcap", format, len(b), len(a))
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":   "",
		"text":    "hello, world\nthis is not a flow file\n",
		"badgzip": "\x1f\x8b garbage",
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o644)
		if _, _, err := Open(path, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "text" && !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		head []byte
		want Format
	}{
		{[]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0}, Pcap},         // little-endian µs
		{[]byte{0xa1, 0xb2, 0xc3, 0xd4, 0, 2}, Pcap},         // big-endian µs
		{[]byte{0x4d, 0x3c, 0xb2, 0xa1, 2, 0}, Pcap},         // little-endian ns
		{[]byte{0xa1, 0xb2, 0x3c, 0x4d, 0, 2}, Pcap},         // big-endian ns
		{[]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0}, PcapNG}, // section header block
		{[]byte(" {\"src_addr\":\"10.0.0.1\"}"), JSONLines},
		{[]byte("ts,te,td,sa,da,sp,dp,pr\n"), NfdumpCSV},
		{[]byte{0x1f, 0x8b, 8, 0}, Unknown},
		{[]byte("GET / HTTP/1.1\r\n"), Unknown},
	} {
		if got := Detect(tc.head); got != tc.want {
			t.Errorf("Detect(% x) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

// The project captures in testdata/ hold what testdata/README.md says they
// hold, as the meter sees them: these are the facts the end-to-end tests
// and the example rules are tuned against.
func TestProjectCaptures(t *testing.T) {
	type facts struct {
		maxPorts int    // most distinct dst ports one src sent bare SYNs to, on one dst
		maxHosts int    // most distinct dsts one src sent bare SYNs to, on one dst port
		maxBytes uint64 // most bytes one src sent to one dst
		scanner  string // src with maxPorts
		sweeper  string // src with maxHosts
		uploader string // src with maxBytes
		hasUDP   bool
	}
	measure := func(fs []flow.Flow) facts {
		type pair struct{ a, b netip.Addr }
		type srcPort struct {
			a netip.Addr
			p uint16
		}
		ports := map[pair]map[uint16]bool{}
		hosts := map[srcPort]map[netip.Addr]bool{}
		bytesTo := map[pair]uint64{}
		var f facts
		for _, fl := range fs {
			if fl.Proto == flow.ProtoUDP {
				f.hasUDP = true
			}
			bytesTo[pair{fl.SrcAddr, fl.DstAddr}] += fl.Bytes
			if fl.Proto != flow.ProtoTCP || !fl.SYN || fl.ACK {
				continue // count connection attempts, not replies
			}
			pk := pair{fl.SrcAddr, fl.DstAddr}
			if ports[pk] == nil {
				ports[pk] = map[uint16]bool{}
			}
			ports[pk][fl.DstPort] = true
			hk := srcPort{fl.SrcAddr, fl.DstPort}
			if hosts[hk] == nil {
				hosts[hk] = map[netip.Addr]bool{}
			}
			hosts[hk][fl.DstAddr] = true
		}
		for k, v := range ports {
			if len(v) > f.maxPorts {
				f.maxPorts, f.scanner = len(v), k.a.String()
			}
		}
		for k, v := range hosts {
			if len(v) > f.maxHosts {
				f.maxHosts, f.sweeper = len(v), k.a.String()
			}
		}
		for k, v := range bytesTo {
			if v > f.maxBytes {
				f.maxBytes, f.uploader = v, k.a.String()
			}
		}
		return f
	}
	for _, tc := range []struct {
		file  string
		check func(f facts) bool
	}{
		{"portscan.pcap", func(f facts) bool {
			return f.maxPorts == 2000 && f.scanner == "127.0.0.5" && f.maxHosts == 1 && f.maxBytes < 1<<20
		}},
		{"hostsweep.pcap", func(f facts) bool {
			return f.maxHosts == 120 && f.sweeper == "127.0.0.6" && f.maxPorts == 3 && f.maxBytes < 1<<20
		}},
		{"upload.pcap", func(f facts) bool {
			return f.maxBytes > 80<<20 && f.uploader == "127.0.0.7" && f.maxPorts <= 1 && f.maxHosts <= 1
		}},
		{"normal.pcap", func(f facts) bool {
			return f.maxPorts <= 1 && f.maxHosts <= 1 && f.maxBytes < 1<<20 && f.hasUDP
		}},
		{"demo.pcap", func(f facts) bool {
			return f.maxPorts == 1000 && f.scanner == "127.0.0.5" && f.maxHosts == 120 && f.sweeper == "127.0.0.6" &&
				f.maxBytes > 30<<20 && f.uploader == "127.0.0.7" && f.hasUDP
		}},
	} {
		path := filepath.Join("../../testdata", tc.file)
		if fi, err := os.Stat(path); err != nil {
			t.Fatal(err)
		} else if fi.Size() >= 400<<10 {
			t.Errorf("%s: %d bytes, the limit is 400 KiB", tc.file, fi.Size())
		}
		fs, format, src := run(t, path, Options{})
		f := measure(fs)
		if format != Pcap || !tc.check(f) {
			t.Errorf("%s (%v, %+v): %+v", tc.file, format, src.Stats(), f)
		}
	}
}
