package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The committed port scan as softflowd exported it (NetFlow v9) to nfcapd
// and nfdump printed it (engine/testdata/README.md): ts, te and tr are
// columns 0, 1 and 12.
const scanCSV = "../../engine/testdata/portscan.nfdump.csv"

const nfdumpTime = "2006-01-02 15:04:05"

// csvRows reads the fixture: its header and its rows, split on commas.
func csvRows(t *testing.T) (string, [][]string) {
	t.Helper()
	data, err := os.ReadFile(scanCSV)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Split(l, ","))
	}
	return lines[0], rows
}

// writeCSV writes header and rows, without the receive-time column (the
// last) unless withTR, and returns the file's path.
func writeCSV(t *testing.T, name, header string, rows [][]string, withTR bool) string {
	t.Helper()
	var b bytes.Buffer
	cut := func(fields []string) []string {
		if withTR {
			return fields
		}
		return fields[:len(fields)-1]
	}
	b.WriteString(strings.Join(cut(strings.Split(header, ",")), ",") + "\n")
	for _, r := range rows {
		b.WriteString(strings.Join(cut(r), ",") + "\n")
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// shifted returns row with its flow start and end (not its receive time)
// moved by d.
func shifted(t *testing.T, row []string, d time.Duration) []string {
	t.Helper()
	out := append([]string(nil), row...)
	for _, i := range []int{0, 1} {
		ts, err := time.Parse(nfdumpTime, out[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ts.Add(d).Format(nfdumpTime)
	}
	return out
}

// replayLines replays path and returns its alert lines as printed, and
// stderr (the summary).
func replayLines(t *testing.T, path string) ([]string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--format", "json", path}, &out, &errb); code != 0 {
		t.Fatalf("replay %s: exit %d\n%s", path, code, errb.String())
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, errb.String()
}

// scanAlert returns the vertical port scan's alert line.
func scanAlert(t *testing.T, lines []string) string {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, `"rule":"vertical-port-scan"`) {
			return l
		}
	}
	t.Fatalf("no vertical-port-scan alert in %d alerts", len(lines))
	return ""
}

// ordinary returns the index of the first flow of ordinary traffic (the
// HTTP client 127.0.0.21, see testdata/README.md).
func ordinary(t *testing.T, rows [][]string) int {
	t.Helper()
	for i, r := range rows {
		if r[3] == "127.0.0.21" {
			return i
		}
	}
	t.Fatal("no ordinary flow")
	return -1
}

// unstamped returns an alert line without its samples' flow start and
// end: the flows as the exporter stamped them, the one thing a skewed
// clock changes.
func unstamped(t *testing.T, line string) string {
	t.Helper()
	var a map[string]any
	if err := json.Unmarshal([]byte(line), &a); err != nil {
		t.Fatal(err)
	}
	samples, _ := a["samples"].([]any)
	if len(samples) == 0 {
		t.Fatalf("alert without samples: %s", line)
	}
	for _, s := range samples {
		delete(s.(map[string]any), "time_flow_start")
		delete(s.(map[string]any), "time_flow_end")
	}
	out, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// One ordinary flow stamped an hour ahead, first in the file or in its
// middle, moves no clock: the scan raises the very alert of the clean
// file, and the summary counts the flow as future.
func TestReplayFutureOutlier(t *testing.T) {
	header, rows := csvRows(t)
	clean, _ := replayLines(t, writeCSV(t, "clean.csv", header, rows, false))
	want := scanAlert(t, clean)
	i := ordinary(t, rows)
	outlier := shifted(t, rows[i], time.Hour)
	rest := append(append([][]string(nil), rows[:i]...), rows[i+1:]...)
	// In the middle: among the scan's flows, before it has probed the
	// rule's 100 ports.
	mid, probes := 0, 0
	for mid < len(rest) && probes < 20 {
		if rest[mid][3] == "127.0.0.5" {
			probes++
		}
		mid++
	}
	for name, variant := range map[string][][]string{
		"first":  append([][]string{outlier}, rest...),
		"middle": append(append(append([][]string(nil), rest[:mid]...), outlier), rest[mid:]...),
	} {
		t.Run(name, func(t *testing.T) {
			got, summary := replayLines(t, writeCSV(t, name+".csv", header, variant, false))
			if a := scanAlert(t, got); a != want {
				t.Errorf("scan alert changed:\n got %s\nwant %s", a, want)
			}
			if !strings.Contains(summary, "1 future") {
				t.Errorf("summary does not count the future flow:\n%s", summary)
			}
		})
	}
}

// With receive times in the file, a source whose clock is off by ±10
// minutes or by two days is placed on the receive clock: every alert is
// the one of the file as exported.
func TestReplaySkewedSource(t *testing.T) {
	header, rows := csvRows(t)
	clean, _ := replayLines(t, writeCSV(t, "clean.csv", header, rows, true))
	scanAlert(t, clean)
	for _, d := range []time.Duration{-10 * time.Minute, 10 * time.Minute, 48 * time.Hour} {
		t.Run(d.String(), func(t *testing.T) {
			var skewed [][]string
			for _, r := range rows {
				skewed = append(skewed, shifted(t, r, d))
			}
			got, _ := replayLines(t, writeCSV(t, "skewed.csv", header, skewed, true))
			if len(got) != len(clean) {
				t.Fatalf("%d alerts, want %d", len(got), len(clean))
			}
			for i := range got {
				if g, w := unstamped(t, got[i]), unstamped(t, clean[i]); g != w {
					t.Errorf("alert %d changed:\n got %s\nwant %s", i, g, w)
				}
			}
		})
	}
}
