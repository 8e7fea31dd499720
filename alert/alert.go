// Package alert defines the Alert every notifier renders, and its JSON and
// text forms. It sits below the engine (which builds alerts) and the
// notifiers (which send them), so neither imports the other.
package alert

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// MaxSamples is how many flows an alert carries at most.
const MaxSamples = 5

// Alert is one firing of a rule for one group. Its JSON form is a contract
// (alert/README.md): field names and order are fixed. Times are event times, so
// a replay of the same input gives the same alerts byte for byte.
type Alert struct {
	ID           string                    `json:"id"`
	Rule         string                    `json:"rule"`
	Name         string                    `json:"name"`
	Severity     string                    `json:"severity"`
	Tags         []string                  `json:"tags"`
	Group        map[string]any            `json:"group"`
	Value        float64                   `json:"value"`
	Threshold    float64                   `json:"threshold"`
	Window       string                    `json:"window"`
	FirstSeen    time.Time                 `json:"first_seen"`
	LastSeen     time.Time                 `json:"last_seen"`
	FiredAt      time.Time                 `json:"fired_at"`
	Message      string                    `json:"message"`
	Enrichment   map[string]map[string]any `json:"enrichment"`
	SamplingRate uint32                    `json:"sampling_rate"`
	Samples      []flow.Flow               `json:"samples"`

	// What a learning rule learned of the group (at most one is set):
	// absent from the JSON of other rules.
	Baseline *Baseline `json:"baseline,omitempty"`
	NewTerm  *NewTerm  `json:"new_term,omitempty"`
	Beacon   *Beacon   `json:"beacon,omitempty"`

	// Notify names the notifiers the rule asked for; empty means route by
	// the configuration. Not part of the JSON.
	Notify []string `json:"-"`
}

// Baseline is the group's learned normal that a baseline rule's value
// exceeded.
type Baseline struct {
	Mean      float64 `json:"mean"`      // learned mean of the group's window value
	Spread    float64 `json:"spread"`    // learned standard deviation
	Deviation float64 `json:"deviation"` // (value - mean) / spread
	Samples   int     `json:"samples"`   // samples the baseline was learned from
	Season    string  `json:"season"`    // "all", "hour 14" (UTC) or "weekday 3" (0 is Sunday)
}

// NewTerm is the value a new_terms rule's group had not shown before.
type NewTerm struct {
	Field string `json:"field"` // the rule's field(s), joined by ","
	Term  string `json:"term"`  // the new value(s), joined by ","
	Known int    `json:"known"` // terms the group had shown within the history
}

// Beacon describes the regular connections a beacon rule found.
type Beacon struct {
	Interval  float64 `json:"interval"`   // mean interval between beats, seconds
	Jitter    float64 `json:"jitter"`     // mean deviation of an interval, a fraction of Interval
	Count     int     `json:"count"`      // connection starts considered
	Missed    int     `json:"missed"`     // beats missed among them
	Score     float64 `json:"score"`      // regularity, 0..1: 3/4 intervals, 1/4 sizes
	SizeScore float64 `json:"size_score"` // regularity of the bytes per beat, 0..1
}

// MarshalJSON writes the alert with times in RFC 3339 (UTC) and non-nil
// collections, so consumers never see null where a list or object belongs.
func (a *Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	c := plain(*a)
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if c.Group == nil {
		c.Group = map[string]any{}
	}
	if c.Enrichment == nil {
		c.Enrichment = map[string]map[string]any{}
	}
	if c.Samples == nil {
		c.Samples = []flow.Flow{}
	}
	c.FirstSeen = c.FirstSeen.UTC()
	c.LastSeen = c.LastSeen.UTC()
	c.FiredAt = c.FiredAt.UTC()
	return json.Marshal(&c)
}

// GroupString renders the group as "k=v k=v" in key order.
func (a *Alert) GroupString() string {
	keys := make([]string, 0, len(a.Group))
	for k := range a.Group {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, a.Group[k])
	}
	return b.String()
}

// Text renders the alert as one line for people reading a terminal or a
// plain log.
func (a *Alert) Text() string {
	var b strings.Builder
	b.WriteString(a.FiredAt.UTC().Format(time.RFC3339))
	b.WriteString(" [")
	b.WriteString(strings.ToUpper(a.Severity))
	b.WriteString("] ")
	b.WriteString(a.Rule)
	if len(a.Tags) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(a.Tags, ","))
		b.WriteString(")")
	}
	b.WriteString(" ")
	b.WriteString(a.GroupString())
	b.WriteString(" value=")
	b.WriteString(FormatNumber(a.Value))
	b.WriteString(" threshold=")
	b.WriteString(FormatNumber(a.Threshold))
	b.WriteString(" window=")
	b.WriteString(a.Window)
	if a.Message != "" {
		b.WriteString(": ")
		b.WriteString(a.Message)
	}
	return b.String()
}

// FormatNumber prints whole numbers without a fraction and others in the
// shortest form that reads back the same (the engine rounds values to three
// decimals before they get here).
func FormatNumber(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
