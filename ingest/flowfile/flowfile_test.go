package flowfile

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// The files in testdata were made from real tools (Debian nfdump 1.7.1,
// softflowd 1.1, goflow2 v2.2.6 built from the module cache) on a machine
// whose time zone is UTC:
//
//	# flows.pcap: loopback traffic, 127.0.0.40/29 only
//	tcpdump -i lo -s 128 -U -n -w flows.pcap 'net 127.0.0.40/29' &
//	python3 -m http.server --bind 127.0.0.40 8080        # serving a 30000-byte file
//	socat UDP4-RECVFROM:53,bind=127.0.0.42,fork EXEC:cat  # UDP echo
//	3 x curl --interface 127.0.0.41 http://127.0.0.40:8080/f.bin
//	4 x printf "q$i example.test" | socat -T 1 - UDP4:127.0.0.42:53,bind=127.0.0.43
//	nmap -n -sS -p 20-29 -S 127.0.0.44 -e lo -Pn 127.0.0.45
//	hping3 -1 -c 2 -i u100000 -a 127.0.0.44 127.0.0.46
//
//	# nfdump.csv: softflowd exports NetFlow v9 to nfcapd, nfdump prints CSV
//	nfcapd -w nf -p 29995 -b 127.0.0.1 &
//	softflowd -r flows.pcap -n 127.0.0.1:29995 -v 9 -a -d
//	kill %nfcapd; nfdump -r nf/nfcapd.* -o csv > nfdump.csv
//
//	# goflow2.jsonl: the same export, received by goflow2's own binary
//	go build github.com/netsampler/goflow2/v2/cmd/goflow2   # v2.2.6
//	goflow2 -listen netflow://127.0.0.1:29996 -format json > goflow2.jsonl &
//	softflowd -r flows.pcap -n 127.0.0.1:29996 -v 9 -a -d
//
// nfcapd logged "Flows: 36, Packets: 68, Bytes: 94077"; nfdump's summary
// line says the same.
const (
	realFlows   = 36
	realPackets = 68
	realBytes   = 94077
)

func readAll(t testing.TB, r *Reader) []flow.Flow {
	t.Helper()
	var out []flow.Flow
	if err := r.Run(context.Background(), func(b []flow.Flow) { out = append(out, b...) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func openTest(t testing.TB, path string, opts Options) *Reader {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC // the testdata was made on a UTC machine
	}
	if opts.OnMalformed == nil {
		opts.OnMalformed = func(line int, err error) { t.Errorf("%s:%d: %v", path, line, err) }
	}
	r, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func totals(fs []flow.Flow) (packets, bytes uint64) {
	for i := range fs {
		packets += fs[i].Packets
		bytes += fs[i].Bytes
	}
	return
}

func TestGoflow2Output(t *testing.T) {
	r := openTest(t, "testdata/goflow2.jsonl", Options{})
	if r.Format() != JSONLines {
		t.Fatalf("format %v", r.Format())
	}
	fs := readAll(t, r)
	if len(fs) != realFlows {
		t.Fatalf("%d flows, want %d", len(fs), realFlows)
	}
	if p, b := totals(fs); p != realPackets || b != realBytes {
		t.Errorf("totals %d packets %d bytes, want %d %d", p, b, realPackets, realBytes)
	}
	st := r.Stats()
	if st.Packets != realFlows || st.Flows != realFlows || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
	// The first line, field by field.
	want := flow.Flow{
		Type:           flow.TypeNetFlowV9,
		SamplerAddress: netip.MustParseAddr("127.0.0.1"),
		SequenceNum:    1,
		SamplingRate:   1,
		TimeReceived:   time.Unix(0, 1795815610604333927).UTC(),
		TimeFlowStart:  time.Unix(0, 1795815601862000000).UTC(),
		TimeFlowEnd:    time.Unix(0, 1795815601862000000).UTC(),
		SrcAddr:        netip.MustParseAddr("127.0.0.44"),
		DstAddr:        netip.MustParseAddr("127.0.0.45"),
		SrcPort:        47369,
		DstPort:        25,
		Bytes:          44,
		Packets:        1,
		RawBytes:       44,
		RawPackets:     1,
	}
	want.SetProto(flow.ProtoTCP)
	want.SetTCPFlags(flow.TCPSyn)
	if !reflect.DeepEqual(fs[0], want) {
		t.Errorf("first flow\n got %+v\nwant %+v", fs[0], want)
	}
}

func TestNfdumpCSV(t *testing.T) {
	r := openTest(t, "testdata/nfdump.csv", Options{})
	if r.Format() != NfdumpCSV {
		t.Fatalf("format %v", r.Format())
	}
	fs := readAll(t, r)
	if len(fs) != realFlows {
		t.Fatalf("%d flows, want %d", len(fs), realFlows)
	}
	if p, b := totals(fs); p != realPackets || b != realBytes {
		t.Errorf("totals %d packets %d bytes, want %d %d", p, b, realPackets, realBytes)
	}
	// header + 36 records + blank-free summary block of 3 lines
	if st := r.Stats(); st.Packets != 1+realFlows+3 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
	want := flow.Flow{
		Type:           flow.TypeFile,
		SamplerAddress: netip.MustParseAddr("127.0.0.1"),
		TimeReceived:   time.Date(2026, 11, 27, 21, 40, 10, 348e6, time.UTC),
		TimeFlowStart:  time.Date(2026, 11, 27, 21, 40, 1, 0, time.UTC),
		TimeFlowEnd:    time.Date(2026, 11, 27, 21, 40, 1, 0, time.UTC),
		SrcAddr:        netip.MustParseAddr("127.0.0.44"),
		DstAddr:        netip.MustParseAddr("127.0.0.45"),
		SrcPort:        47369,
		DstPort:        25,
		Bytes:          44,
		Packets:        1,
		RawBytes:       44,
		RawPackets:     1,
	}
	want.SetProto(flow.ProtoTCP)
	want.SetTCPFlags(flow.TCPSyn)
	if !reflect.DeepEqual(fs[0], want) {
		t.Errorf("first flow\n got %+v\nwant %+v", fs[0], want)
	}
	if !fs[1].RST || !fs[1].ACK || fs[1].SYN { // "...A.R.."
		t.Errorf("second flow flags %#x", fs[1].TCPFlags)
	}
}

// nfdump -q prints neither the header nor the summary.
func TestNfdumpCSVHeaderless(t *testing.T) {
	data, err := os.ReadFile("testdata/nfdump.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var body []string
	for _, l := range lines[1:] {
		if l == "Summary" {
			break
		}
		body = append(body, l)
	}
	in := strings.Join(body, "\n")
	if got := Detect([]byte(in)); got != NfdumpCSV {
		t.Fatalf("Detect = %v", got)
	}
	r, err := New(strings.NewReader(in), Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	fs := readAll(t, r)
	if p, b := totals(fs); len(fs) != realFlows || p != realPackets || b != realBytes {
		t.Errorf("%d flows, %d packets, %d bytes", len(fs), p, b)
	}
}

// Two nfdump outputs concatenated: the second header ends the first
// summary.
func TestNfdumpCSVConcatenated(t *testing.T) {
	data, err := os.ReadFile("testdata/nfdump.csv")
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(bytes.NewReader(append(append([]byte{}, data...), data...)), Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if fs := readAll(t, r); len(fs) != 2*realFlows || r.Stats().Malformed != 0 {
		t.Errorf("%d flows, stats %+v", len(fs), r.Stats())
	}
}

type flowKey struct {
	src, dst         netip.Addr
	sport, dport     uint16
	proto, flags     uint8
	bytes, packets   uint64
	startSec, endSec int64
}

func keys(fs []flow.Flow) []string {
	var out []string
	for _, f := range fs {
		k := flowKey{f.SrcAddr, f.DstAddr, f.SrcPort, f.DstPort, f.Proto, f.TCPFlags, f.Bytes, f.Packets,
			f.TimeFlowStart.Unix(), f.TimeFlowEnd.Unix()}
		if f.Proto == flow.ProtoICMP {
			k.dport = 0 // nfdump shows ICMP type*256+code in dp, goflow2 0
		}
		out = append(out, fmt.Sprint(k))
	}
	sort.Strings(out)
	return out
}

// goflow2 and nfdump received the same export: the flows must agree (to
// the second, nfdump's resolution for ts/te).
func TestGoflow2AndNfdumpAgree(t *testing.T) {
	a := keys(readAll(t, openTest(t, "testdata/goflow2.jsonl", Options{})))
	b := keys(readAll(t, openTest(t, "testdata/nfdump.csv", Options{})))
	if !reflect.DeepEqual(a, b) {
		t.Errorf("goflow2 and nfdump differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

func TestFlowguardFixture(t *testing.T) {
	fs := readAll(t, openTest(t, "testdata/flowguard.jsonl", Options{}))
	if len(fs) != 3 {
		t.Fatalf("%d flows", len(fs))
	}
	if f := fs[1]; f.Proto != flow.ProtoTCP || !f.SYN || f.TCPFlags != flow.TCPSyn || f.DstPort != 23 {
		t.Errorf("proto_name and syn alone: %+v", f)
	}
	f := fs[2]
	if f.Type != flow.TypeFile || f.ProtoName != "udp" || f.Bytes != 1200 || f.RawBytes != 120 || f.Packets != 20 {
		t.Errorf("third flow %+v", f)
	}
	if !f.TimeFlowEnd.Equal(time.Date(2025, 3, 1, 9, 0, 3, 0, time.UTC)) {
		t.Errorf("time_flow_end %v", f.TimeFlowEnd)
	}
	if !reflect.DeepEqual(f.SrcLists, []string{"tor-exit"}) || f.Direction != flow.DirectionExternal {
		t.Errorf("enrichment %+v", f)
	}
}

func fullFlow() flow.Flow {
	f := flow.Flow{
		Type:           flow.TypeIPFIX,
		SamplerAddress: netip.MustParseAddr("192.0.2.1"),
		SequenceNum:    77,
		SamplingRate:   100,
		InIf:           3,
		OutIf:          4,
		ExporterName:   "edge1",
		InIfName:       "wan0",
		OutIfName:      "lan0",
		TimeReceived:   time.Date(2025, 3, 1, 10, 0, 5, 123456789, time.UTC),
		TimeFlowStart:  time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		TimeFlowEnd:    time.Date(2025, 3, 1, 10, 0, 4, 5e8, time.UTC),
		SrcAddr:        netip.MustParseAddr("2001:db8::1"),
		DstAddr:        netip.MustParseAddr("2001:db8:1::2"),
		SrcPort:        443,
		DstPort:        51000,
		RawBytes:       1500,
		RawPackets:     3,
		SrcAS:          64500,
		DstAS:          64501,
		NextHop:        netip.MustParseAddr("2001:db8::fe"),
		SrcNet:         netip.MustParsePrefix("2001:db8::/48"),
		DstNet:         netip.MustParsePrefix("2001:db8:1::/48"),
		SrcCountry:     "US",
		SrcCity:        "Boston \"MA\" \u00e9",
		SrcASN:         64500,
		SrcASOrg:       "Example Net",
		SrcInternal:    true,
		SrcNetwork:     "dmz",
		SrcLists:       []string{"tor-exit", "spamhaus-drop"},
		DstCountry:     "DE",
		DstCity:        "Berlin",
		DstASN:         64501,
		DstASOrg:       "Other\\Net",
		DstInternal:    false,
		DstNetwork:     "office",
		DstLists:       []string{"x"},
		Direction:      flow.DirectionOutbound,
	}
	f.SetProto(flow.ProtoTCP)
	f.SetTCPFlags(flow.TCPSyn | flow.TCPAck | flow.TCPPsh)
	f.Renormalise()
	return f
}

// Flows flowguard marshals read back equal.
func TestFlowguardJSONRoundTrip(t *testing.T) {
	in := []flow.Flow{fullFlow(), {}, fullFlow()}
	in[1].Type = flow.TypeFile
	in[1].SrcAddr = netip.MustParseAddr("10.0.0.1")
	in[1].DstAddr = netip.MustParseAddr("10.0.0.2")
	in[1].SetProto(flow.ProtoICMP)
	in[1].RawBytes, in[1].RawPackets = 84, 1
	in[1].Renormalise()
	in[2].SamplingRate = 0
	in[2].Renormalise()
	in[2].SrcAddr = netip.MustParseAddr("::ffff:10.1.2.3")
	in[2].SrcNet = netip.Prefix{}
	var buf bytes.Buffer
	for i := range in {
		b, err := json.Marshal(&in[i])
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	r, err := New(&buf, Options{OnMalformed: func(l int, err error) { t.Errorf("line %d: %v", l, err) }})
	if err != nil {
		t.Fatal(err)
	}
	out := readAll(t, r)
	if len(out) != len(in) {
		t.Fatalf("%d flows", len(out))
	}
	for i := range in {
		if !reflect.DeepEqual(out[i], in[i]) {
			t.Errorf("flow %d\n got %+v\nwant %+v", i, out[i], in[i])
		}
	}
}

func TestMalformedLines(t *testing.T) {
	good := `{"src_addr":"10.0.0.1","dst_addr":"10.0.0.2","proto":"UDP","bytes":10,"packets":1}`
	in := strings.Join([]string{
		good,
		`{"src_addr":"10.0.0.300"}`,     // 2: bad address
		`{"src_addr":"10.0.0.1",`,       // 3: truncated
		`not json`,                      // 4
		good,                            // 5
		`{"proto":"NOPE"}`,              // 6: unknown protocol name
		`{"bytes":-1}`,                  // 7: negative
		`{"src_port":70000}`,            // 8: out of range
		`{"time_flow_end":"yesterday"}`, // 9: bad time
		"",                              // 10: blank, skipped
		`{"a":[1,{"b":"]}"}],"bytes":5} trailing`, // 11: data after the object
		good + ` `, // 12
	}, "\n")
	type report struct {
		line int
		msg  string
	}
	var reports []report
	r, err := New(strings.NewReader(in), Options{
		MaxReports:  3,
		OnMalformed: func(line int, err error) { reports = append(reports, report{line, err.Error()}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	fs := readAll(t, r)
	if len(fs) != 3 {
		t.Errorf("%d flows, want 3", len(fs))
	}
	st := r.Stats()
	if st.Malformed != 8 || st.Packets != 12 || st.Flows != 3 {
		t.Errorf("stats %+v", st)
	}
	if len(reports) != 3 || reports[0].line != 2 || reports[1].line != 3 || reports[2].line != 4 {
		t.Errorf("reports %+v", reports)
	}
	if !strings.Contains(reports[0].msg, "src_addr") || !strings.Contains(reports[0].msg, "10.0.0.300") {
		t.Errorf("report names neither field nor value: %q", reports[0].msg)
	}
}

func TestMalformedCSV(t *testing.T) {
	in := "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt\n" +
		"2025-03-01 10:00:00,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,TCP,...A..S.,0,0,1,60\n" +
		"2025-03-01 10:00:00,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,TCP\n" + // short
		"2025-13-01 10:00:00,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,TCP,......,0,0,1,60\n" + // month
		"2025-03-01 10:00:00,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,TCP,..Z...,0,0,1,60\n" + // flags
		"garbage\n" +
		"2025-03-01 10:00:00.250,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,47,0x12,0,0,1,60\n"
	var n int
	r, err := New(strings.NewReader(in), Options{Location: time.UTC, OnMalformed: func(int, error) { n++ }})
	if err != nil {
		t.Fatal(err)
	}
	fs := readAll(t, r)
	if len(fs) != 2 || r.Stats().Malformed != 4 || n != 4 {
		t.Fatalf("%d flows, stats %+v", len(fs), r.Stats())
	}
	if fs[0].TCPFlags != flow.TCPSyn|flow.TCPAck {
		t.Errorf("flags %#x", fs[0].TCPFlags)
	}
	if f := fs[1]; f.Proto != flow.ProtoGRE || f.TCPFlags != 0x12 || f.TimeFlowStart.Nanosecond() != 250e6 {
		t.Errorf("second %+v", f)
	}
}

func TestLongLine(t *testing.T) {
	good := `{"src_addr":"10.0.0.1","dst_addr":"10.0.0.2","proto":6}` + "\n"
	long := `{"src_addr":"10.0.0.1","pad":"` + strings.Repeat("x", 600<<10) + `"}` + "\n"
	in := good + long + good + long
	r, err := New(strings.NewReader(in), Options{MaxLineBytes: 700 << 10, OnMalformed: func(l int, err error) { t.Errorf("line %d: %v", l, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if fs := readAll(t, r); len(fs) != 4 {
		t.Errorf("%d flows", len(fs))
	}
	var reported []int
	r, _ = New(strings.NewReader(in), Options{MaxLineBytes: 100 << 10, OnMalformed: func(l int, err error) { reported = append(reported, l) }})
	if fs := readAll(t, r); len(fs) != 2 || !reflect.DeepEqual(reported, []int{2, 4}) {
		t.Errorf("%d flows, reported %v", len(fs), reported)
	}
}

func TestGzip(t *testing.T) {
	data, err := os.ReadFile("testdata/nfdump.csv")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	path := t.TempDir() + "/flows.csv.gz"
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, path, Options{})
	if r.Format() != NfdumpCSV || len(readAll(t, r)) != realFlows {
		t.Errorf("gzip: format %v", r.Format())
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{
		{`{"src_addr":"1.2.3.4"}`, JSONLines},
		{"\xef\xbb\xbf \n\t{", JSONLines},
		{nfdump17Header + "\n", NfdumpCSV},
		{"TS, TE, SA, DA\n", NfdumpCSV},
		{"src_addr,dst_addr,bytes\n", NfdumpCSV},
		{"2025-03-01 10:00:00,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,TCP,......,0,0,1,60", NfdumpCSV},
		{"2025-03-01 10:00:00,x", Unknown},
		{"\xd4\xc3\xb2\xa1", Unknown},
		{"hello,world\n", Unknown},
		{"", Unknown},
	} {
		if got := Detect([]byte(tc.in)); got != tc.want {
			t.Errorf("Detect(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if _, err := New(strings.NewReader("hello\n"), Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("New(hello) err = %v", err)
	}
}

func TestCancel(t *testing.T) {
	line := `{"src_addr":"10.0.0.1","dst_addr":"10.0.0.2","proto":6}` + "\n"
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := New(strings.NewReader(strings.Repeat(line, 10000)), Options{BatchSize: 100})
	batches := 0
	err := r.Run(ctx, func([]flow.Flow) {
		if batches++; batches == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || batches != 2 {
		t.Errorf("err %v after %d batches", err, batches)
	}
}

// goflow2's bytes and packets are what the exporter counted; flowguard
// multiplies them by sampling_rate and keeps the raw values.
func TestGoflow2Sampling(t *testing.T) {
	in := `{"type":"SFLOW_5","time_received_ns":1681583295157626000,"sequence_num":2999,"sampling_rate":100,"sampler_address":"192.168.0.1","time_flow_start_ns":1681583295157626000,"time_flow_end_ns":1681583295157626000,"bytes":1500,"packets":1,"src_addr":"fd01::1","dst_addr":"fd01::2","etype":"IPv6","proto":"IPv6-ICMP","src_port":0,"dst_port":0,"src_net":"fd01::/64","dst_net":"0.0.0.0/0","next_hop":"","layer_stack":["Ethernet","IPv6","ICMPv6"]}`
	r, err := New(strings.NewReader(in), Options{OnMalformed: func(l int, err error) { t.Errorf("line %d: %v", l, err) }})
	if err != nil {
		t.Fatal(err)
	}
	fs := readAll(t, r)
	if len(fs) != 1 {
		t.Fatalf("%d flows", len(fs))
	}
	f := fs[0]
	if f.Bytes != 150000 || f.Packets != 100 || f.RawBytes != 1500 || f.RawPackets != 1 || f.SamplingRate != 100 {
		t.Errorf("volume %+v", f)
	}
	if f.Type != flow.TypeSFlow5 || f.Proto != flow.ProtoICMPv6 || f.ProtoName != "icmpv6" {
		t.Errorf("type/proto %q %d %q", f.Type, f.Proto, f.ProtoName)
	}
	if f.SrcNet != netip.MustParsePrefix("fd01::/64") || f.DstNet.IsValid() || f.NextHop.IsValid() {
		t.Errorf("nets %v %v %v", f.SrcNet, f.DstNet, f.NextHop)
	}
}
