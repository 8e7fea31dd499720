package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/flow"
)

// Rules that learn: a baseline on a numeric aggregate, new terms, and
// beacons. The engine keeps what they learn per group (engine/learn*.go).

// Seasonality splits a baseline by time of the (UTC) day or week.
type Seasonality uint8

// Seasonalities.
const (
	SeasonNone    Seasonality = iota // one baseline per group
	SeasonHour                       // one per hour of the day (24)
	SeasonWeekday                    // one per day of the week (7)
)

// Slots is how many baselines a group keeps under s.
func (s Seasonality) Slots() int {
	switch s {
	case SeasonHour:
		return 24
	case SeasonWeekday:
		return 7
	}
	return 1
}

// String names s as rules spell it.
func (s Seasonality) String() string {
	switch s {
	case SeasonHour:
		return "hour"
	case SeasonWeekday:
		return "weekday"
	}
	return "none"
}

// Baseline makes a sum, count or distinct rule compare each group's value
// with the group's own learned normal. The rule's threshold is then a
// floor: the value must reach it too.
type Baseline struct {
	K           float64       // fire above mean + K·spread (default 3)
	Factor      float64       // when set, fire above Factor × mean instead
	HalfLife    time.Duration // weight of a sample halves after this much event time (default 7d)
	Warmup      int           // samples a group (and season) needs before it can fire (default 12)
	Seasonality Seasonality   // separate baselines per hour of day or day of week
	MaxGroups   int           // groups learned per rule; the stalest is evicted past it (default 10000)
}

// NewTerms fires when a group shows a value of Fields it has not shown
// within History, once the group has been learning for Learning.
type NewTerms struct {
	Fields    []*flow.Field
	History   time.Duration // default 7d
	Learning  time.Duration // default 1d
	MaxGroups int           // default 10000
	MaxTerms  int           // terms per group (default 1000); the oldest is evicted past it
}

// Beacon fires on a group (by default source, destination and destination
// port) whose connections start at a regular interval.
type Beacon struct {
	MinCount    int           // connection starts needed (default 10, at most BeaconHistory)
	Jitter      float64       // tolerated deviation of an interval, a fraction of it (default 0.2)
	MinInterval time.Duration // shortest interval considered (default 2s)
	MaxInterval time.Duration // longest interval considered (default 1h)
	MaxMissed   int           // beats that may be missed in a row (default 3)
	MinScore    float64       // fire at this regularity score, 0..1 (default 0.8)
	MaxPairs    int           // groups tracked per rule (default 10000)
}

// BeaconHistory is how many connection starts a beacon rule keeps per group.
const BeaconHistory = 24

// Defaults of the learning rules.
const (
	DefaultBaselineK        = 3
	DefaultBaselineHalfLife = 7 * 24 * time.Hour
	DefaultBaselineWarmup   = 12
	DefaultLearnGroups      = 10000
	DefaultTermsHistory     = 7 * 24 * time.Hour
	DefaultTermsLearning    = 24 * time.Hour
	DefaultMaxTerms         = 1000
	DefaultBeaconMinCount   = 10
	DefaultBeaconJitter     = 0.2
	DefaultBeaconMinIvl     = 2 * time.Second
	DefaultBeaconMaxIvl     = time.Hour
	DefaultBeaconMaxMissed  = 3
	DefaultBeaconMinScore   = 0.8
	defaultLearnSuppress    = time.Hour
	maxLearnGroups          = 1000000
	maxTermsPerGroup        = 100000
)

// learnTemplateNames are the message placeholders of each learning kind.
var (
	baselineTemplateNames = []string{"mean", "spread", "deviation"}
	termsTemplateNames    = []string{"term"}
	beaconTemplateNames   = []string{"interval", "jitter", "count", "score"}
)

// mapping walks a mapping-valued rule key, calling fn for each entry with
// its path; unknown keys are errors with a suggestion.
func (d *ruleDecoder) mapping(key string, allowed []string, fn func(k string, v *yaml.Node, path string)) bool {
	n := d.keys[key]
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "must be a mapping (%v)", allowed)
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		path := key + "." + k.Value
		if !slices.Contains(allowed, k.Value) {
			d.errorf(k, path, "unknown field%s", didYouMean(k.Value, allowed))
			continue
		}
		fn(k.Value, v, path)
	}
	return true
}

// number decodes a positive number, optionally with a unit-free suffix
// (10k) or a percentage when pct.
func (d *ruleDecoder) number(v *yaml.Node, path string, pct bool) (float64, bool) {
	if v.Kind != yaml.ScalarNode {
		d.errorf(v, path, "must be a single value")
		return 0, false
	}
	q, err := ParseQuantity(v.Value)
	switch {
	case err != nil:
		d.errorf(v, path, "%v", err)
		return 0, false
	case q.Unit == UnitPercent && !pct, q.Unit != UnitPercent && q.Unit != UnitNone:
		d.errorf(v, path, "%s: must be a plain number", v.Value)
		return 0, false
	case q.Value <= 0 || math.IsNaN(q.Value) || math.IsInf(q.Value, 0):
		d.errorf(v, path, "must be > 0")
		return 0, false
	}
	return q.Value, true
}

// count decodes a whole number in [lo, hi].
func (d *ruleDecoder) count(v *yaml.Node, path string, lo, hi int) (int, bool) {
	x, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || x < lo || x > hi {
		d.errorf(v, path, "%q: must be a whole number from %d to %d", v.Value, lo, hi)
		return 0, false
	}
	return x, true
}

// durationNode decodes a positive duration.
func (d *ruleDecoder) durationNode(v *yaml.Node, path string) (time.Duration, bool) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!int" || v.Tag == "!!float" {
		d.errorf(v, path, "%s: must be a duration with a unit, as in 1h or 7d", v.Value)
		return 0, false
	}
	dur, err := ParseDuration(v.Value)
	if err != nil {
		d.errorf(v, path, "%v", err)
		return 0, false
	}
	if dur <= 0 {
		d.errorf(v, path, "must be > 0")
		return 0, false
	}
	return dur, true
}

// baseline decodes baseline: {k, factor, half_life, warmup, seasonality,
// max_groups} on a sum, count or distinct rule.
func (d *ruleDecoder) baseline(r *decodedRule, aggKey string) {
	if _, ok := d.keys["baseline"]; !ok {
		return
	}
	if aggKey != "sum" && aggKey != "count" && aggKey != "distinct" {
		d.errorf(d.knodes["baseline"], "baseline", "applies to sum, count and distinct rules")
		return
	}
	b := &Baseline{K: DefaultBaselineK, HalfLife: DefaultBaselineHalfLife, Warmup: DefaultBaselineWarmup,
		MaxGroups: DefaultLearnGroups}
	d.mapping("baseline", []string{"k", "factor", "half_life", "warmup", "seasonality", "max_groups"},
		func(k string, v *yaml.Node, path string) {
			switch k {
			case "k":
				b.K, _ = d.number(v, path, false)
			case "factor":
				if x, ok := d.number(v, path, false); ok {
					if x <= 1 {
						d.errorf(v, path, "must be > 1 (a multiple of the mean)")
					}
					b.Factor = x
				}
			case "half_life":
				b.HalfLife, _ = d.durationNode(v, path)
			case "warmup":
				b.Warmup, _ = d.count(v, path, 1, 100000)
			case "max_groups":
				b.MaxGroups, _ = d.count(v, path, 1, maxLearnGroups)
			case "seasonality":
				switch v.Value {
				case "none":
				case "hour":
					b.Seasonality = SeasonHour
				case "weekday":
					b.Seasonality = SeasonWeekday
				default:
					d.errorf(v, path, "%q is not one of none, hour, weekday", v.Value)
				}
			}
		})
	r.Baseline = b
}

// newTerms decodes new_terms: {field, history, learning, max_groups,
// max_terms}.
func (d *ruleDecoder) newTerms(r *decodedRule) {
	t := &NewTerms{History: DefaultTermsHistory, Learning: DefaultTermsLearning,
		MaxGroups: DefaultLearnGroups, MaxTerms: DefaultMaxTerms}
	ok := d.mapping("new_terms", []string{"field", "history", "learning", "max_groups", "max_terms"},
		func(k string, v *yaml.Node, path string) {
			switch k {
			case "field":
				t.Fields = d.fieldList(v, path)
			case "history":
				t.History, _ = d.durationNode(v, path)
			case "learning":
				if v.Value == "0s" || v.Value == "0" {
					t.Learning = 0
					return
				}
				t.Learning, _ = d.durationNode(v, path)
			case "max_groups":
				t.MaxGroups, _ = d.count(v, path, 1, maxLearnGroups)
			case "max_terms":
				t.MaxTerms, _ = d.count(v, path, 1, maxTermsPerGroup)
			}
		})
	if ok && len(t.Fields) == 0 && !d.failed {
		d.errorf(d.keys["new_terms"], "new_terms.field", "required (a flow field, or a list of them)")
	}
	r.NewTerms = t
	r.Aggregate = NewTermsAgg
}

// fieldList decodes a field name or a list of them.
func (d *ruleDecoder) fieldList(v *yaml.Node, path string) []*flow.Field {
	var out []*flow.Field
	switch v.Kind {
	case yaml.ScalarNode:
		if fd := d.field(v, path); fd != nil {
			out = append(out, fd)
		}
	case yaml.SequenceNode:
		for i, it := range v.Content {
			it = resolve(it)
			p := fmt.Sprintf("%s[%d]", path, i)
			if it.Kind != yaml.ScalarNode {
				d.errorf(it, p, "must be a flow field")
				continue
			}
			if fd := d.field(it, p); fd != nil {
				out = append(out, fd)
			}
		}
	default:
		d.errorf(v, path, "must be a flow field or a list of them")
	}
	return out
}

// beacon decodes beacon: {min_count, jitter, min_interval, max_interval,
// max_missed, min_score, max_pairs}.
func (d *ruleDecoder) beacon(r *decodedRule) {
	b := &Beacon{MinCount: DefaultBeaconMinCount, Jitter: DefaultBeaconJitter,
		MinInterval: DefaultBeaconMinIvl, MaxInterval: DefaultBeaconMaxIvl,
		MaxMissed: DefaultBeaconMaxMissed, MinScore: DefaultBeaconMinScore, MaxPairs: DefaultLearnGroups}
	n := d.keys["beacon"]
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "true") {
		// beacon: {} spelt "beacon: true": every default
	} else {
		d.mapping("beacon", []string{"min_count", "jitter", "min_interval", "max_interval", "max_missed",
			"min_score", "max_pairs"}, func(k string, v *yaml.Node, path string) {
			switch k {
			case "min_count":
				b.MinCount, _ = d.count(v, path, 3, BeaconHistory)
			case "jitter":
				if x, ok := d.number(v, path, true); ok && x >= 1 {
					d.errorf(v, path, "%s: must be below 100%%", v.Value)
				} else {
					b.Jitter = x
				}
			case "min_interval":
				b.MinInterval, _ = d.durationNode(v, path)
			case "max_interval":
				b.MaxInterval, _ = d.durationNode(v, path)
			case "max_missed":
				b.MaxMissed, _ = d.count(v, path, 0, 10)
			case "min_score":
				if x, ok := d.number(v, path, true); ok && x > 1 {
					d.errorf(v, path, "%s: a score is at most 1", v.Value)
				} else {
					b.MinScore = x
				}
			case "max_pairs":
				b.MaxPairs, _ = d.count(v, path, 1, maxLearnGroups)
			}
		})
	}
	if b.MaxInterval <= b.MinInterval && !d.failed {
		d.errorf(n, "beacon.max_interval", "must be above min_interval (%v)", b.MinInterval)
	}
	r.Beacon = b
	r.Aggregate = BeaconAgg
}

// defaultBeaconGroup is a beacon rule's group_by when it sets none.
var defaultBeaconGroup = []string{"src_addr", "dst_addr", "dst_port"}

// learnDefaults fills what learning rules leave unset once the rest of the
// rule is decoded.
func (d *ruleDecoder) learnDefaults(r *decodedRule) {
	if r.Aggregate == BeaconAgg && len(r.GroupBy) == 0 {
		for _, name := range defaultBeaconGroup {
			fd, _ := flow.Lookup(name)
			r.GroupBy = append(r.GroupBy, fd)
		}
	}
}

// learnTemplateNamesOf are the extra placeholders r's message may use.
func learnTemplateNamesOf(r *decodedRule) []string {
	switch {
	case r.Baseline != nil:
		return baselineTemplateNames
	case r.Aggregate == NewTermsAgg:
		return termsTemplateNames
	case r.Aggregate == BeaconAgg:
		return beaconTemplateNames
	}
	return nil
}

// Learns reports whether the rule learns per group (baseline, new terms,
// beacon).
func (r *Rule) Learns() bool {
	return r.Baseline != nil || r.Aggregate == NewTermsAgg || r.Aggregate == BeaconAgg
}
