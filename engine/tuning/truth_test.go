package tuning

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/flowguard/flowguard/alert"
)

func TestReadTruthForms(t *testing.T) {
	want := []Expected{
		{Rule: "vertical-port-scan", Group: map[string]string{"src_addr": "203.0.113.201", "dst_addr": "10.20.0.15"}},
		{Rule: "distributed-port-scan", Group: map[string]string{"dst_addr": "10.20.0.15"}},
		{Rule: "heavy-hitter"},
	}
	for name, doc := range map[string]string{
		"gen scenario": `{"generator": "flowguard gen scenario", "seed": 1, "behaviours": [
			{"behaviour": "scan", "rule": "vertical-port-scan", "group": {"dst_addr": "10.20.0.15", "src_addr": "203.0.113.201"},
			 "also": [{"rule": "distributed-port-scan", "group": {"dst_addr": "10.20.0.15"}}]},
			{"behaviour": "x", "rule": "heavy-hitter"}]}`,
		"json lines": `{"rule": "vertical-port-scan", "group": {"dst_addr": "10.20.0.15", "src_addr": "203.0.113.201"}}
# a comment
{"rule": "distributed-port-scan", "group": {"dst_addr": "10.20.0.15"}}

{"rule": "heavy-hitter"}
{"rule": "heavy-hitter"}
`,
		"text": `# rule, then the group
vertical-port-scan src_addr=203.0.113.201 dst_addr=10.20.0.15
distributed-port-scan dst_addr=10.20.0.15
heavy-hitter
`,
	} {
		tr, err := ReadTruth(strings.NewReader(doc))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(tr.Expected, want) {
			t.Errorf("%s: %+v, want %+v", name, tr.Expected, want)
		}
	}
}

func TestReadTruthErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"port-scan src_addr\n":                    `line 1: "src_addr" is not FIELD=VALUE`,
		"# x\n{\"rule\": \"a\", \"groop\": {}}\n": `line 2: json: unknown field "groop"`,
		"{\"group\": {\"a\": \"1\"}}\n":           "expected alert 1 has no rule",
		strings.Repeat("r\n", MaxTruthExpected+1): "more than 100000 expected alerts",
		strings.Repeat("#", MaxTruthBytes+1):      "larger than",
	} {
		_, err := ReadTruth(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: error %v, want %q", doc, err, want)
		}
	}
	tr, err := ReadTruth(strings.NewReader("# this capture must raise nothing\n"))
	if err != nil || len(tr.Expected) != 0 {
		t.Errorf("a comment-only truth: %v %v", tr, err)
	}
}

func alertOf(rule string, group map[string]any) *alert.Alert {
	return &alert.Alert{Rule: rule, Group: group}
}

// Alerts are matched with the truth by rule and group: each expected pair
// raised at least once is detected, the others are misses; every other
// pair is a false alarm, listed with its alert count.
func TestScorer(t *testing.T) {
	tr, err := ReadTruth(strings.NewReader(`vertical-port-scan src_addr=127.0.0.5 dst_addr=127.0.0.9
host-sweep src_addr=127.0.0.6 dst_port=22
host-sweep src_addr=127.0.0.6 dst_port=445
host-sweep src_addr=127.0.0.6 dst_port=3389
`))
	if err != nil {
		t.Fatal(err)
	}
	tr.File = "portscan.truth"
	s := NewScorer(tr)
	s.OnAlert(alertOf("vertical-port-scan", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.5"), "dst_addr": netip.MustParseAddr("127.0.0.9")}))
	s.OnAlert(alertOf("vertical-port-scan", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.5"), "dst_addr": netip.MustParseAddr("127.0.0.9")}))
	s.OnAlert(alertOf("host-sweep", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.6"), "dst_port": uint16(22)}))
	s.OnAlert(alertOf("host-sweep", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.6"), "dst_port": uint16(445)}))
	s.OnAlert(alertOf("heavy-hitter", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.7")}))
	s.OnAlert(alertOf("heavy-hitter", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.7")}))
	s.OnAlert(alertOf("vertical-port-scan", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.6"), "dst_addr": netip.MustParseAddr("127.0.1.1")}))
	rep := s.Report()
	if rep.Expected != 4 || rep.Detected != 3 || rep.Recall != 0.75 || rep.FalseAlarms != 2 {
		t.Errorf("totals %+v", rep)
	}
	byRule := map[string]TruthRule{}
	for _, r := range rep.Rules {
		byRule[r.Rule] = r
	}
	if r := byRule["host-sweep"]; r.Expected != 3 || r.Detected != 2 || *r.Recall != 0.6667 || r.FalseAlarms != 0 ||
		len(r.Misses) != 1 || r.Misses[0].Group["dst_port"] != "3389" {
		t.Errorf("host-sweep %+v", r)
	}
	if r := byRule["heavy-hitter"]; r.Expected != 0 || r.Recall != nil || r.FalseAlarms != 1 ||
		len(r.FalseAlarmGroups) != 1 || r.FalseAlarmGroups[0].Alerts != 2 {
		t.Errorf("heavy-hitter %+v", r)
	}
	if r := byRule["vertical-port-scan"]; r.Expected != 1 || r.Detected != 1 || r.FalseAlarms != 1 {
		t.Errorf("vertical-port-scan %+v", r)
	}
	var text strings.Builder
	rep.WriteText(&text)
	for _, want := range []string{
		"truth portscan.truth: 3 of 4 expected alerts detected (recall 0.75), 2 false alarms",
		"host-sweep                   expected 3  detected 2  recall 0.67  false alarms 0",
		"    miss         dst_port=3389 src_addr=127.0.0.6",
		"heavy-hitter                 expected 0  detected 0  recall -  false alarms 1",
		"    false alarm  src_addr=127.0.0.7  (2 alerts)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	js, _ := json.Marshal(rep)
	for _, want := range []string{`"recall":null`, `"misses":[{"rule":"host-sweep","group":{"dst_port":"3389","src_addr":"127.0.0.6"}}]`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
}

// False alarm groups past MaxFalseAlarmsListed are counted, not kept.
func TestScorerBoundsFalseAlarms(t *testing.T) {
	s := NewScorer(&Truth{})
	for range 2 { // each group alerts twice: counted once
		for i := range MaxFalseAlarmsListed + 50 {
			s.OnAlert(alertOf("flood", map[string]any{"dst_port": i}))
		}
	}
	rep := s.Report()
	if len(s.false) != MaxFalseAlarmsListed || rep.FalseAlarms != MaxFalseAlarmsListed+50 ||
		len(rep.Rules[0].FalseAlarmGroups) != MaxFalseAlarmsListed {
		t.Errorf("kept %d, report %d false alarms, %d listed", len(s.false), rep.FalseAlarms, len(rep.Rules[0].FalseAlarmGroups))
	}
	var text strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "... and 50 more groups") {
		t.Errorf("text: %s", text.String())
	}
}

// Scoring runs once per alert, not per flow: it renders the alert's group.
func BenchmarkScorerOnAlert(b *testing.B) {
	tr, _ := ReadTruth(strings.NewReader("vertical-port-scan src_addr=127.0.0.5 dst_addr=127.0.0.9\n"))
	s := NewScorer(tr)
	a := alertOf("vertical-port-scan", map[string]any{"src_addr": netip.MustParseAddr("127.0.0.5"), "dst_addr": netip.MustParseAddr("127.0.0.9")})
	b.ReportAllocs()
	for b.Loop() {
		s.OnAlert(a)
	}
}
