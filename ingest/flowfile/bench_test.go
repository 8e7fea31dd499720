package flowfile

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// benchInput repeats the lines of a file (header and summary kept once)
// until it holds n records.
func benchInput(b *testing.B, path string, n int) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	var head, body [][]byte
	for _, l := range lines {
		switch {
		case len(bytes.TrimSpace(l)) == 0:
		case bytes.HasPrefix(l, []byte("ts,")):
			head = append(head, l)
		case bytes.HasPrefix(l, []byte("Summary")):
			goto done
		default:
			body = append(body, l)
		}
	}
done:
	var buf bytes.Buffer
	for _, h := range head {
		buf.Write(h)
	}
	for i := 0; i < n; i++ {
		buf.Write(body[i%len(body)])
	}
	return buf.Bytes()
}

func benchRun(b *testing.B, in []byte, lines int) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var flows int
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r, err := New(bytes.NewReader(in), Options{Location: time.UTC})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Run(context.Background(), func(batch []flow.Flow) { flows += len(batch) }); err != nil {
			b.Fatal(err)
		}
		if r.Stats().Malformed != 0 {
			b.Fatalf("malformed: %+v", r.Stats())
		}
	}
	b.ReportMetric(float64(lines*b.N)/time.Since(start).Seconds(), "lines/s")
}

const benchLines = 10000

// goflow2's default JSON: ~950 bytes and 50 keys a line.
func BenchmarkGoflow2JSON(b *testing.B) {
	benchRun(b, benchInput(b, "testdata/goflow2.jsonl", benchLines), benchLines)
}

// flowguard's own JSON, as encoding/json writes flow.Flow.
func BenchmarkFlowguardJSON(b *testing.B) {
	f := fullFlow()
	f.SrcLists, f.DstLists, f.SrcCity, f.DstASOrg = nil, nil, "Boston", "Other"
	line, _ := json.Marshal(&f)
	line = append(line, '\n')
	benchRun(b, bytes.Repeat(line, benchLines), benchLines)
}

func BenchmarkNfdumpCSV(b *testing.B) {
	benchRun(b, benchInput(b, "testdata/nfdump.csv", benchLines), benchLines)
}

// The per-line cost without the Reader around it.
func BenchmarkGoflow2JSONLine(b *testing.B) {
	data, _ := os.ReadFile("testdata/goflow2.jsonl")
	line := bytes.TrimSpace(data[:bytes.IndexByte(data, '\n')])
	var p jsonParser
	var f flow.Flow
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f = flow.Flow{}
		if _, _, err := p.parseLine(line, &f); err != nil {
			b.Fatal(err)
		}
	}
}
