package flowfile

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowguard/flowguard/flow"
)

func seedLines(f *testing.F, path string) {
	file, err := os.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(append([]byte(nil), sc.Bytes()...))
	}
}

// checkFlow holds for every flow a parser accepts.
func checkFlow(t *testing.T, f *flow.Flow) {
	if f.ProtoName != flow.ProtoName(f.Proto) {
		t.Fatalf("proto_name %q for proto %d", f.ProtoName, f.Proto)
	}
	if f.SYN != (f.TCPFlags&flow.TCPSyn != 0) || f.ACK != (f.TCPFlags&flow.TCPAck != 0) ||
		f.FIN != (f.TCPFlags&flow.TCPFin != 0) || f.RST != (f.TCPFlags&flow.TCPRst != 0) {
		t.Fatalf("flag booleans disagree with %#x", f.TCPFlags)
	}
	if f.Type == "" {
		t.Fatal("empty type")
	}
}

func validStrings(f *flow.Flow) bool {
	for _, s := range append([]string{f.Type, f.SrcCountry, f.SrcCity, f.SrcASOrg, f.SrcNetwork,
		f.DstCountry, f.DstCity, f.DstASOrg, f.DstNetwork, f.Direction}, append(f.SrcLists, f.DstLists...)...) {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func FuzzJSONLine(f *testing.F) {
	seedLines(f, "testdata/goflow2.jsonl")
	seedLines(f, "testdata/flowguard.jsonl")
	f.Add([]byte(`{"src_city":"\ud83d\ude00 \u00e9\n","src_lists":["a","b\""],"x":[{"y":"]"}]}`))
	f.Add([]byte(`{"time_received":1.5e9,"bytes":1e3,"src_net":24,"src_addr":"10.1.2.3"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var p jsonParser
		var fl flow.Flow
		skip, _, err := p.parseLine(line, &fl)
		if err != nil || skip {
			return
		}
		checkFlow(t, &fl)
		// What flowguard writes, it reads back unchanged.
		if !validStrings(&fl) {
			return
		}
		out, err := json.Marshal(&fl)
		if err != nil {
			return // a time beyond year 9999
		}
		var back flow.Flow
		if _, _, err := p.parseLine(out, &back); err != nil {
			t.Fatalf("re-reading %s: %v", out, err)
		}
		if !reflect.DeepEqual(normTimes(fl), normTimes(back)) {
			t.Fatalf("round trip\n in %+v\nout %+v\njson %s", fl, back, out)
		}
	})
}

// normTimes drops the time zone pointer, which equal instants may differ in.
func normTimes(f flow.Flow) flow.Flow {
	for _, t := range []*time.Time{&f.TimeReceived, &f.TimeFlowStart, &f.TimeFlowEnd} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return f
}

func FuzzNfdumpCSVLine(f *testing.F) {
	seedLines(f, "testdata/nfdump.csv")
	f.Add([]byte("2025-03-01 10:00:00.250,2025-03-01 10:00:01,1.000,10.0.0.1,10.0.0.2,1,2,47,0x12,0,0,1,60"))
	f.Fuzz(func(t *testing.T, line []byte) {
		p := newCSVParser(time.UTC)
		var fl flow.Flow
		skip, _, err := p.parseLine(line, &fl)
		if err != nil || skip {
			return
		}
		checkFlow(t, &fl)
		if !fl.SrcAddr.IsValid() || !fl.DstAddr.IsValid() {
			t.Fatal("record without addresses accepted")
		}
	})
}

// The header a file starts with then decides the columns of the next line.
func FuzzNfdumpCSVHeaderThenLine(f *testing.F) {
	f.Add([]byte("sa,da,ibyt"), []byte("10.0.0.1,10.0.0.2,5"))
	f.Add([]byte(nfdump17Header), []byte("2026-11-27 21:40:01,2026-11-27 21:40:01,0.000,127.0.0.44,127.0.0.45,47369,25,TCP,......S.,0,0,1,44"))
	f.Fuzz(func(t *testing.T, header, line []byte) {
		p := newCSVParser(time.UTC)
		var fl flow.Flow
		p.parseLine(header, &fl)
		fl = flow.Flow{}
		if skip, _, err := p.parseLine(line, &fl); err == nil && !skip {
			checkFlow(t, &fl)
		}
	})
}
