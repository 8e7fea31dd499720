package tuning

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/flowguard/flowguard/alert"
)

// Truth is what an input is known to hold: the alerts it must raise, each
// one rule for one group. Every other alert is a false alarm.
type Truth struct {
	File     string     `json:"file"`
	Expected []Expected `json:"expected"`
}

// Expected is one alert an input must raise: a rule and the group's
// field values (empty for a rule without group_by).
type Expected struct {
	Rule  string            `json:"rule"`
	Group map[string]string `json:"group,omitempty"`
}

// Limits of a truth file: it is input like any other.
const (
	MaxTruthBytes    = 16 << 20 // bytes of a truth file
	MaxTruthExpected = 100000   // expected alerts in one
)

// LoadTruth reads a truth file in any of its three forms (see ReadTruth).
func LoadTruth(path string) (*Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ReadTruth(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.File = path
	return t, nil
}

// ReadTruth reads a truth file. Three forms are accepted:
//
//   - the truth `flowguard gen scenario` writes beside its capture: a JSON
//     object whose "behaviours" each name a "rule" and a "group", and
//     under "also" the other alerts they raise;
//   - JSON lines, one {"rule": ..., "group": {...}} a line;
//   - text lines "RULE [FIELD=VALUE ...]", such as
//     "vertical-port-scan dst_addr=10.20.0.15 src_addr=203.0.113.201".
//
// Blank lines and lines starting with # are skipped in the line forms, so
// a file of comments only says the input must raise nothing. The same rule
// and group given twice is one expected alert.
func ReadTruth(r io.Reader) (*Truth, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTruthBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTruthBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxTruthBytes)
	}
	t := &Truth{}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("{")) && bytes.Contains(trimmed, []byte(`"behaviours"`)) {
		var scenario struct {
			Behaviours []struct {
				Expected
				Also []Expected `json:"also"`
			} `json:"behaviours"`
		}
		if err := json.Unmarshal(trimmed, &scenario); err == nil {
			for _, b := range scenario.Behaviours {
				t.Expected = append(t.Expected, b.Expected)
				t.Expected = append(t.Expected, b.Also...)
			}
			return t.checked()
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var e Expected
		if strings.HasPrefix(text, "{") {
			dec := json.NewDecoder(strings.NewReader(text))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				return nil, fmt.Errorf("line %d: %v (want {\"rule\": ..., \"group\": {...}})", line, err)
			}
		} else {
			fields := strings.Fields(text)
			e.Rule = fields[0]
			for _, kv := range fields[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return nil, fmt.Errorf("line %d: %q is not FIELD=VALUE (want RULE FIELD=VALUE ...)", line, kv)
				}
				if e.Group == nil {
					e.Group = map[string]string{}
				}
				e.Group[k] = v
			}
		}
		t.Expected = append(t.Expected, e)
		if len(t.Expected) > MaxTruthExpected {
			return nil, fmt.Errorf("more than %d expected alerts", MaxTruthExpected)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return t.checked()
}

// checked refuses expectations without a rule and drops repeats.
func (t *Truth) checked() (*Truth, error) {
	if len(t.Expected) > MaxTruthExpected {
		return nil, fmt.Errorf("more than %d expected alerts", MaxTruthExpected)
	}
	seen := map[string]bool{}
	out := t.Expected[:0]
	for i, e := range t.Expected {
		if e.Rule == "" {
			return nil, fmt.Errorf("expected alert %d has no rule", i+1)
		}
		k := e.Rule + "\x00" + groupText(e.Group)
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	t.Expected = out
	return t, nil
}

// Scorer compares the alerts of a replay with a Truth. OnAlert is called
// for every alert, from one goroutine.
type Scorer struct {
	truth    *Truth
	expected map[string]*scored // rule + "\x00" + group key
	false    map[string]*scored // alerts nobody expected, by rule and group
	falseN   map[string]int     // false alarm groups per rule, also past the cap
	maxFalse int
	// unlisted holds the hashes of the false alarm groups past the cap,
	// so that each is counted once (up to maxUnlisted of them; past
	// that, every alert counts).
	unlisted map[uint64]struct{}
}

const maxUnlisted = 1 << 20

type scored struct {
	Expected
	alerts uint64
}

// MaxFalseAlarmsListed bounds the false alarm groups a report names per
// rule; the rest are counted.
const MaxFalseAlarmsListed = 100

// NewScorer returns a Scorer for t. An empty truth (no expected alert) is
// valid: every alert is then a false alarm.
func NewScorer(t *Truth) *Scorer {
	s := &Scorer{truth: t, expected: map[string]*scored{}, false: map[string]*scored{}, falseN: map[string]int{},
		maxFalse: MaxFalseAlarmsListed, unlisted: map[uint64]struct{}{}}
	for _, e := range t.Expected {
		s.expected[e.Rule+"\x00"+groupText(e.Group)] = &scored{Expected: e}
	}
	return s
}

// OnAlert scores one alert.
func (s *Scorer) OnAlert(a *alert.Alert) {
	k := a.Rule + "\x00" + a.GroupString()
	if e := s.expected[k]; e != nil {
		e.alerts++
		return
	}
	if f := s.false[k]; f != nil {
		f.alerts++
		return
	}
	if s.falseN[a.Rule] >= s.maxFalse {
		h := xxhash.Sum64String(k)
		if _, ok := s.unlisted[h]; ok {
			return
		}
		if len(s.unlisted) < maxUnlisted {
			s.unlisted[h] = struct{}{}
		}
		s.falseN[a.Rule]++
		return
	}
	s.falseN[a.Rule]++
	g := make(map[string]string, len(a.Group))
	for k, v := range a.Group {
		g[k] = fmt.Sprint(v)
	}
	s.false[k] = &scored{Expected: Expected{Rule: a.Rule, Group: g}, alerts: 1}
}

// TruthReport is how a replay's alerts compare with the truth.
type TruthReport struct {
	File        string  `json:"file,omitempty"`
	Expected    int     `json:"expected"`     // alerts (rule and group) the input must raise
	Detected    int     `json:"detected"`     // of those, raised at least once
	Recall      float64 `json:"recall"`       // detected / expected (1 when nothing is expected)
	FalseAlarms int     `json:"false_alarms"` // rule and group pairs that alerted unexpected
	// Rules has one entry per rule that was expected or alerted, by id.
	Rules []TruthRule `json:"rules"`
}

// TruthRule is the truth comparison of one rule.
type TruthRule struct {
	Rule     string `json:"rule"`
	Expected int    `json:"expected"`
	Detected int    `json:"detected"`
	// Recall is Detected / Expected; null when the rule was expected
	// nowhere (its alerts are all false alarms).
	Recall      *float64 `json:"recall"`
	FalseAlarms int      `json:"false_alarms"` // groups, counted past the listed ones
	// Misses are the expected groups that raised nothing.
	Misses []Expected `json:"misses"`
	// FalseAlarmGroups are the groups that alerted unexpected (at most
	// MaxFalseAlarmsListed), with their alert counts.
	FalseAlarmGroups []FalseAlarm `json:"false_alarm_groups"`
}

// FalseAlarm is one group that alerted though nothing was expected of it.
type FalseAlarm struct {
	Group  map[string]string `json:"group,omitempty"`
	Alerts uint64            `json:"alerts"`
}

// Report compares what OnAlert saw with the truth.
func (s *Scorer) Report() *TruthReport {
	rep := &TruthReport{File: s.truth.File}
	byRule := map[string]*TruthRule{}
	get := func(id string) *TruthRule {
		r := byRule[id]
		if r == nil {
			r = &TruthRule{Rule: id, Misses: []Expected{}, FalseAlarmGroups: []FalseAlarm{}}
			byRule[id] = r
		}
		return r
	}
	for _, e := range s.expected {
		r := get(e.Rule)
		r.Expected++
		rep.Expected++
		if e.alerts > 0 {
			r.Detected++
			rep.Detected++
		} else {
			r.Misses = append(r.Misses, e.Expected)
		}
	}
	for _, f := range s.false {
		r := get(f.Rule)
		r.FalseAlarmGroups = append(r.FalseAlarmGroups, FalseAlarm{Group: f.Group, Alerts: f.alerts})
	}
	for id, n := range s.falseN {
		get(id).FalseAlarms = n
		rep.FalseAlarms += n
	}
	rep.Recall = 1
	if rep.Expected > 0 {
		rep.Recall = round4(float64(rep.Detected) / float64(rep.Expected))
	}
	for _, r := range byRule {
		if r.Expected > 0 {
			v := round4(float64(r.Detected) / float64(r.Expected))
			r.Recall = &v
		}
		sort.Slice(r.Misses, func(i, j int) bool { return groupText(r.Misses[i].Group) < groupText(r.Misses[j].Group) })
		sort.Slice(r.FalseAlarmGroups, func(i, j int) bool {
			return groupText(r.FalseAlarmGroups[i].Group) < groupText(r.FalseAlarmGroups[j].Group)
		})
		rep.Rules = append(rep.Rules, *r)
	}
	sort.Slice(rep.Rules, func(i, j int) bool { return rep.Rules[i].Rule < rep.Rules[j].Rule })
	return rep
}

// WriteText writes the comparison for people: one line per rule, then the
// misses and false alarms by name.
func (t *TruthReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "truth %s: %d of %d expected alerts detected (recall %.2f), %s\n",
		t.File, t.Detected, t.Expected, t.Recall, count(t.FalseAlarms, "false alarm"))
	for _, r := range t.Rules {
		recall := "-"
		if r.Recall != nil {
			recall = fmt.Sprintf("%.2f", *r.Recall)
		}
		fmt.Fprintf(&b, "  %-28s expected %d  detected %d  recall %s  false alarms %d\n",
			r.Rule, r.Expected, r.Detected, recall, r.FalseAlarms)
		for _, m := range r.Misses {
			fmt.Fprintf(&b, "    miss         %s\n", orNoGroup(groupText(m.Group)))
		}
		for _, f := range r.FalseAlarmGroups {
			fmt.Fprintf(&b, "    false alarm  %s  (%s)\n", orNoGroup(groupText(f.Group)), count(f.Alerts, "alert"))
		}
		if extra := r.FalseAlarms - len(r.FalseAlarmGroups); extra > 0 {
			fmt.Fprintf(&b, "    false alarm  ... and %d more groups\n", extra)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNoGroup(s string) string {
	if s == "" {
		return "(no group)"
	}
	return s
}
