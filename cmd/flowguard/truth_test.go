package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type truthJSON struct {
	Truth *struct {
		Expected    int     `json:"expected"`
		Detected    int     `json:"detected"`
		Recall      float64 `json:"recall"`
		FalseAlarms int     `json:"false_alarms"`
		Rules       []struct {
			Rule        string   `json:"rule"`
			Expected    int      `json:"expected"`
			Detected    int      `json:"detected"`
			Recall      *float64 `json:"recall"`
			FalseAlarms int      `json:"false_alarms"`
			Misses      []struct {
				Rule  string            `json:"rule"`
				Group map[string]string `json:"group"`
			} `json:"misses"`
			FalseAlarmGroups []struct {
				Group  map[string]string `json:"group"`
				Alerts int               `json:"alerts"`
			} `json:"false_alarm_groups"`
		} `json:"rules"`
	} `json:"truth"`
}

func replayTruth(t *testing.T, truth, capture string, extra ...string) truthJSON {
	t.Helper()
	args := append([]string{"replay", "--stats", "json", "--truth", truth}, extra...)
	cmd := exec.Command(binary(t), append(args, capture)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("replay --truth %s %s: %v\n%s", truth, capture, err, stderr.String())
	}
	var rep truthJSON
	if err := json.Unmarshal([]byte(stderr.String()), &rep); err != nil || rep.Truth == nil {
		t.Fatalf("--stats json has no truth (%v):\n%.500s", err, stderr.String())
	}
	return rep
}

// Every committed capture replayed with its truth file: every expected
// alert detected, no false alarm.
func TestReplayTruthOfCommittedCaptures(t *testing.T) {
	truths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.truth"))
	if len(truths) < 14 {
		t.Fatalf("found %d truth files in testdata/", len(truths))
	}
	for _, truth := range truths {
		capture := strings.TrimSuffix(truth, ".truth") + ".pcap"
		t.Run(filepath.Base(capture), func(t *testing.T) {
			rep := replayTruth(t, truth, capture).Truth
			if rep.Detected != rep.Expected || rep.Recall != 1 || rep.FalseAlarms != 0 {
				t.Errorf("expected %d, detected %d, recall %v, %d false alarms: %+v", rep.Expected, rep.Detected, rep.Recall, rep.FalseAlarms, rep.Rules)
			}
		})
	}
}

// A truth that is wrong about a capture: the miss and the false alarm are
// named, per rule, in the JSON report and the text one.
func TestReplayTruthMissesAndFalseAlarms(t *testing.T) {
	dir := t.TempDir()
	truth := filepath.Join(dir, "wrong.truth")
	os.WriteFile(truth, []byte("# portscan.pcap, but the sweep is invented and the distributed scan left out\n"+
		"vertical-port-scan src_addr=127.0.0.5 dst_addr=127.0.0.9\n"+
		"horizontal-host-sweep src_addr=127.0.0.5 dst_port=22\n"), 0o644)
	capture := filepath.Join("..", "..", "testdata", "portscan.pcap")
	rep := replayTruth(t, truth, capture).Truth
	if rep.Expected != 2 || rep.Detected != 1 || rep.Recall != 0.5 || rep.FalseAlarms != 1 {
		t.Errorf("totals %+v", rep)
	}
	for _, r := range rep.Rules {
		switch r.Rule {
		case "horizontal-host-sweep":
			if r.Expected != 1 || r.Detected != 0 || *r.Recall != 0 || len(r.Misses) != 1 || r.Misses[0].Group["dst_port"] != "22" {
				t.Errorf("sweep %+v", r)
			}
		case "distributed-port-scan":
			if r.Recall != nil || r.FalseAlarms != 1 || len(r.FalseAlarmGroups) != 1 || r.FalseAlarmGroups[0].Group["dst_addr"] != "127.0.0.9" {
				t.Errorf("distributed scan %+v", r)
			}
		case "vertical-port-scan":
			if r.Detected != 1 || *r.Recall != 1 {
				t.Errorf("vertical scan %+v", r)
			}
		}
	}
	out, err := exec.Command(binary(t), "replay", "--truth", truth, capture).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"truth " + truth + ": 1 of 2 expected alerts detected (recall 0.50), 1 false alarm",
		"    miss         dst_port=22 src_addr=127.0.0.5",
		"    false alarm  dst_addr=127.0.0.9  (1 alert)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// A truth file that is not one: a usage error naming the line.
	os.WriteFile(truth, []byte("vertical-port-scan src_addr\n"), 0o644)
	cmd := exec.Command(binary(t), "replay", "--truth", truth, capture)
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(msg), "wrong.truth: line 1:") {
		t.Errorf("exit %d: %s", cmd.ProcessState.ExitCode(), msg)
	}
}
