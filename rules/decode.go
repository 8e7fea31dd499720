package rules

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
)

var ruleKeys = []string{"id", "name", "description", "severity", "tags", "enabled",
	"where", "exceptions", "sum", "count", "distinct", "top", "rate", "group_by",
	"window", "threshold", "suppress", "resolve_after", "escalate", "message", "notify", "baseline", "new_terms", "beacon"}

var idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// defaultSuppress is the cooldown of per-flow rules that set none.
const defaultSuppress = 5 * time.Minute

// templateNames are the placeholders every message may use besides the
// rule's group_by fields.
var templateNames = []string{"value", "threshold", "window", "rule", "name", "severity", "first_seen", "last_seen",
	"peak", "duration", "status"}

// DefaultEscalate are the escalation steps of a rule that sets none: a
// firing alert is sent again when its value reaches 2 and 10 times the
// value it was first sent with.
var DefaultEscalate = []float64{2, 10}

// maxEscalate bounds a rule's escalation steps.
const maxEscalate = 16

// defaultResolveAfter is how long a per-flow rule's group must stay quiet
// to be resolved when the rule sets no resolve_after (an aggregate rule's
// default is its window).
const defaultResolveAfter = time.Minute

type decodedRule struct {
	Rule
	disabled bool
}

// ruleDecoder decodes one rule, collecting its errors.
type ruleDecoder struct {
	l      *loader
	src    *source
	label  string // rule id, or rules[i] until the id is known
	failed bool
	keys   map[string]*yaml.Node // key name → value
	knodes map[string]*yaml.Node // key name → key node
	errs   *EvalErrors           // the rule's run-time errors
}

func (d *ruleDecoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.failed = true
	d.l.errorf(d.src, n, d.label, field, format, args...)
}

func (d *ruleDecoder) scalar(key string) (*yaml.Node, bool) {
	v, ok := d.keys[key]
	if !ok {
		return nil, false
	}
	if v.Kind != yaml.ScalarNode {
		d.errorf(v, key, "must be a single value")
		return nil, false
	}
	return v, true
}

func (d *ruleDecoder) str(key string) (string, *yaml.Node) {
	v, ok := d.scalar(key)
	if !ok {
		return "", nil
	}
	if v.Tag == "!!null" {
		return "", nil
	}
	return v.Value, v
}

// strings decodes a string or a sequence of strings.
func (d *ruleDecoder) strings(key string) ([]string, []*yaml.Node) {
	v, ok := d.keys[key]
	if !ok || v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind == yaml.ScalarNode {
		return []string{v.Value}, []*yaml.Node{v}
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v, key, "must be a string or a sequence of strings")
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	for i, it := range v.Content {
		it = resolve(it)
		if it.Kind != yaml.ScalarNode {
			d.errorf(it, fmt.Sprintf("%s[%d]", key, i), "must be a string")
			continue
		}
		out = append(out, it.Value)
		nodes = append(nodes, it)
	}
	return out, nodes
}

func (d *ruleDecoder) boolean(key string) (bool, *yaml.Node) {
	v, ok := d.scalar(key)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v.Value)
	if err != nil || v.Tag != "!!bool" {
		d.errorf(v, key, "must be true or false")
		return false, nil
	}
	return b, v
}

func (d *ruleDecoder) duration(key string) (time.Duration, *yaml.Node) {
	v, ok := d.scalar(key)
	if !ok {
		return 0, nil
	}
	if v.Tag == "!!int" || v.Tag == "!!float" {
		d.errorf(v, key, "%s needs a unit, as in %ss or %sm", v.Value, v.Value, v.Value)
		return 0, nil
	}
	dur, err := ParseDuration(v.Value)
	if err != nil {
		d.errorf(v, key, "%v", err)
		return 0, nil
	}
	return dur, v
}

// field decodes a flow field name, with suggestions when it is unknown.
func (d *ruleDecoder) field(n *yaml.Node, path string) *flow.Field {
	fd, ok := flow.Lookup(n.Value)
	if !ok {
		d.errorf(n, path, "unknown flow field %q%s", n.Value, didYouMean(n.Value, flow.FieldNames()))
		return nil
	}
	return fd
}

func (l *loader) decodeRule(src *source, index int, n *yaml.Node) *decodedRule {
	d := &ruleDecoder{l: l, src: src, label: fmt.Sprintf("rules[%d]", index),
		keys: map[string]*yaml.Node{}, knodes: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "a rule is a mapping (id, severity, where, ...)")
		return nil
	}
	r := &decodedRule{Rule: Rule{File: src.name, Line: n.Line, Column: n.Column, Scale: 1}}

	// The id first, so that every other error names the rule.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Value == "id" {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && v.Value != "" {
				r.ID = v.Value
				if idRe.MatchString(v.Value) {
					d.label = v.Value
				}
			}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if !slices.Contains(ruleKeys, k.Value) {
			d.errorf(k, k.Value, "unknown field%s", didYouMean(k.Value, ruleKeys))
			continue
		}
		if _, dup := d.keys[k.Value]; dup {
			d.errorf(k, k.Value, "set twice")
			continue
		}
		d.keys[k.Value], d.knodes[k.Value] = v, k
	}

	r.Errors = &EvalErrors{rule: r.ID}
	d.errs = r.Errors

	// Identity.
	if id, idn := d.str("id"); idn == nil {
		d.errorf(n, "id", "required")
	} else if !idRe.MatchString(id) {
		d.errorf(idn, "id", "%q must be lower-case letters, digits and dashes, starting with a letter or digit", id)
	} else if prev, dup := l.ids[id]; dup {
		d.errorf(idn, "id", "duplicate id %q, first defined at %s", id, prev)
	} else {
		l.ids[id] = where(src, idn)
	}
	r.Name, _ = d.str("name")
	if r.Name == "" {
		r.Name = r.ID
	}
	r.Description, _ = d.str("description")
	if sev, sn := d.str("severity"); sn == nil {
		d.errorf(n, "severity", "required (one of %s)", strings.Join(alert.Severities, ", "))
	} else if !slices.Contains(alert.Severities, sev) {
		d.errorf(sn, "severity", "%q is not one of %s%s", sev, strings.Join(alert.Severities, ", "),
			didYouMean(strings.ToLower(sev), alert.Severities))
	} else {
		r.Severity = sev
	}
	r.Tags, _ = d.strings("tags")
	r.Notify, _ = d.strings("notify")
	if enabled, en := d.boolean("enabled"); en != nil && !enabled {
		r.disabled = true
	}

	// Conditions.
	if src, wn := d.str("where"); wn != nil {
		r.Where = d.condition(src, wn, "where")
	}
	excs, excNodes := d.strings("exceptions")
	for i, e := range excs {
		if c := d.condition(e, excNodes[i], fmt.Sprintf("exceptions[%d]", i)); c != nil {
			r.Exceptions = append(r.Exceptions, c)
		}
	}
	r.Match = buildMatch(r.Where, r.Exceptions)
	r.loaded = true

	d.aggregate(r)

	// Grouping.
	groupBy, gbNodes := d.strings("group_by")
	for i, name := range groupBy {
		path := fmt.Sprintf("group_by[%d]", i)
		if slices.Contains(groupBy[:i], name) {
			d.errorf(gbNodes[i], path, "%q is listed twice", name)
			continue
		}
		if fd := d.field(gbNodes[i], path); fd != nil {
			if r.DistinctField == fd {
				d.errorf(gbNodes[i], path, "%q is also the distinct field: every group would count 1", name)
			}
			r.GroupBy = append(r.GroupBy, fd)
		}
	}

	// Suppression.
	if sup, sn := d.duration("suppress"); sn != nil {
		r.Suppress = sup
	} else if r.Aggregate == PerFlow {
		r.Suppress = defaultSuppress
	} else if r.Aggregate == NewTermsAgg || r.Aggregate == BeaconAgg {
		r.Suppress = defaultLearnSuppress
	} else {
		r.Suppress = r.Window
	}

	d.learnDefaults(r)
	if len(groupBy) == 0 {
		for _, fd := range r.GroupBy { // the beacon's default
			groupBy = append(groupBy, fd.Name)
		}
	}

	// Lifecycle.
	if ra, rn := d.duration("resolve_after"); rn != nil {
		if ra <= 0 {
			d.errorf(rn, "resolve_after", "must be positive")
		}
		r.ResolveAfter = ra
	} else if r.Aggregate == PerFlow || r.Window <= 0 {
		r.ResolveAfter = defaultResolveAfter // per-flow, new_terms, beacon: no window
	} else {
		r.ResolveAfter = r.Window
	}
	r.Escalate = d.escalate()

	d.message(r, groupBy)

	if d.failed {
		return nil
	}
	return r
}

// escalate decodes escalate: a list of increasing factors above 1 of the
// value first sent, or [] for none; absent, DefaultEscalate.
func (d *ruleDecoder) escalate() []float64 {
	v, ok := d.keys["escalate"]
	if !ok {
		return DefaultEscalate
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v, "escalate", "must be a list of factors, such as [2, 10], or [] for none")
		return nil
	}
	if len(v.Content) > maxEscalate {
		d.errorf(v, "escalate", "at most %d steps", maxEscalate)
		return nil
	}
	out := []float64{}
	for i, it := range v.Content {
		it = resolve(it)
		f, err := strconv.ParseFloat(it.Value, 64)
		path := fmt.Sprintf("escalate[%d]", i)
		switch {
		case it.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || math.IsInf(f, 0):
			d.errorf(it, path, "must be a number, such as 2 (twice the value first sent)")
		case f <= 1:
			d.errorf(it, path, "%s: a factor must be above 1", it.Value)
		case len(out) > 0 && f <= out[len(out)-1]:
			d.errorf(it, path, "%s: factors must increase", it.Value)
		default:
			out = append(out, f)
		}
	}
	return out
}

// condition compiles one condition and reports its errors.
func (d *ruleDecoder) condition(src string, n *yaml.Node, field string) *Condition {
	if strings.TrimSpace(src) == "" {
		d.errorf(n, field, "empty condition")
		return nil
	}
	c, errs := d.l.cc.compile(src, true)
	if len(errs) > 0 {
		d.failed = true
		d.l.exprErrors(d.src, n, d.label, field, errs)
		return nil
	}
	c.errs = d.errs
	return c
}

// buildMatch combines where and the exceptions into one function.
func buildMatch(where *Condition, excs []*Condition) func(*flow.Flow) bool {
	var w func(*flow.Flow) bool
	if where != nil {
		w = where.eval
	}
	ex := make([]func(*flow.Flow) bool, len(excs))
	for i, e := range excs {
		ex[i] = e.eval
	}
	switch {
	case w == nil && len(ex) == 0:
		return func(*flow.Flow) bool { return true }
	case len(ex) == 0:
		return w
	case w == nil:
		return func(f *flow.Flow) bool {
			for _, e := range ex {
				if e(f) {
					return false
				}
			}
			return true
		}
	}
	return func(f *flow.Flow) bool {
		if !w(f) {
			return false
		}
		for _, e := range ex {
			if e(f) {
				return false
			}
		}
		return true
	}
}

// aggregate decodes sum, count, distinct, top, rate, window and threshold.
func (d *ruleDecoder) aggregate(r *decodedRule) {
	var aggKey string
	for _, k := range []string{"sum", "count", "distinct", "top", "new_terms", "beacon"} {
		if _, ok := d.keys[k]; !ok {
			continue
		}
		if aggKey != "" {
			d.errorf(d.knodes[k], k, "at most one of sum, count, distinct, top, new_terms and beacon (this rule has %s)", aggKey)
			continue
		}
		aggKey = k
	}
	metric := "" // bytes, packets, flows; "" for distinct
	switch aggKey {
	case "sum":
		if v, n := d.str("sum"); n != nil {
			if v != "bytes" && v != "packets" {
				d.errorf(n, "sum", "%q: must be bytes or packets (count flows with count: flows)", v)
			}
			metric = v
		}
		r.Aggregate = Sum
	case "count":
		if v, n := d.str("count"); n != nil && v != "flows" {
			d.errorf(n, "count", "%q: the only count is flows (sum bytes or packets with sum)", v)
		}
		metric = "flows"
		r.Aggregate = Sum
	case "distinct":
		r.DistinctField = d.distinctField()
		r.Aggregate = Distinct
	case "top":
		metric = d.top(r)
		r.Aggregate = Top
	case "new_terms":
		d.newTerms(r)
	case "beacon":
		d.beacon(r)
	}
	learning := aggKey == "new_terms" || aggKey == "beacon"

	// Threshold, whose unit may imply the aggregate and the rate.
	var q Quantity
	var (
		tn           *yaml.Node
		hasThreshold bool
		byNetwork    *flow.Field
		netNodes     []*yaml.Node
	)
	if v, ok := d.keys["threshold"]; ok && v.Kind == yaml.MappingNode {
		tn, byNetwork, netNodes = d.thresholdMapping(v)
		hasThreshold = tn != nil
	} else {
		tn, hasThreshold = d.scalar("threshold")
	}
	if hasThreshold {
		var err error
		q, err = ParseQuantity(tn.Value)
		switch {
		case err != nil:
			d.errorf(tn, "threshold", "%v", err)
			hasThreshold = false
		case q.Value <= 0 || math.IsNaN(q.Value) || math.IsInf(q.Value, 0):
			d.errorf(tn, "threshold", "must be > 0")
			hasThreshold = false
		}
	}
	if hasThreshold && aggKey == "" && q.Unit.IsRate() {
		// "threshold: 1Gbps" alone means sum bytes as a rate.
		aggKey, r.Aggregate, metric = "sum", Sum, "bytes"
		if q.Unit == UnitPacketRate {
			metric = "packets"
		}
	}
	if hasThreshold {
		d.checkUnit(r, tn, q, aggKey, metric)
	}
	if metric == "bytes" || metric == "packets" {
		r.Metric, _ = flow.Lookup(metric)
	}
	d.baseline(r, aggKey) // after a rate threshold may have implied sum

	rate, rn := d.boolean("rate")
	if rn != nil {
		switch {
		case aggKey == "" || aggKey == "distinct" || learning:
			if rate {
				d.errorf(rn, "rate", "applies to sum, count and top rules")
			}
		case !rate && r.Rate:
			d.errorf(rn, "rate", "false, but threshold %s is per second", tn.Value)
		default:
			r.Rate = rate
		}
	}

	window, wn := d.duration("window")
	switch {
	case aggKey == "" || learning:
		for _, k := range []string{"window", "threshold"} {
			if kn, ok := d.knodes[k]; ok {
				d.errorf(kn, k, "only rules with sum, count, distinct or top have a %s", k)
			}
		}
	case wn == nil:
		if _, ok := d.keys["window"]; !ok {
			d.errorf(d.knodes[aggKey], "window", "required for %s rules (as in window: 1m)", aggKey)
		}
	case window <= 0:
		d.errorf(wn, "window", "must be > 0")
	default:
		r.Window = window
	}
	if aggKey != "" && aggKey != "top" && !learning {
		if _, ok := d.keys["threshold"]; !ok {
			d.errorf(d.knodes[aggKey], "threshold", "required for %s rules", aggKey)
		}
	}
	if hasThreshold && aggKey != "" && !learning {
		r.Threshold = q.Value
		if byNetwork != nil {
			r.ByNetwork = d.networkThresholds(byNetwork, netNodes, q)
		}
	}
}

// checkUnit matches the threshold's unit with what the rule measures.
func (d *ruleDecoder) checkUnit(r *decodedRule, tn *yaml.Node, q Quantity, aggKey, metric string) {
	switch q.Unit {
	case UnitNone:
		return
	case UnitPercent:
		d.errorf(tn, "threshold", "%s: percentages are for top.share", tn.Value)
		return
	}
	if aggKey == "distinct" || aggKey == "" {
		d.errorf(tn, "threshold", "%s: a %s threshold is a plain number", tn.Value, cmpLabel(aggKey))
		return
	}
	want := "bytes"
	if q.Unit == UnitPacketRate {
		want = "packets"
	}
	if metric != want {
		d.errorf(tn, "threshold", "%s is in %s, but the rule counts %s", tn.Value, q.Unit, metric)
		return
	}
	if q.Unit.IsRate() {
		r.Rate = true
	}
	if q.Unit == UnitBitRate {
		r.Scale = 8
	}
}

func cmpLabel(aggKey string) string {
	if aggKey == "" {
		return "per-flow"
	}
	return aggKey
}

// top decodes top: {by, k, share} and returns the metric.
func (d *ruleDecoder) top(r *decodedRule) string {
	n := d.keys["top"]
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "top", "must be a mapping, as in {by: bytes, k: 10, share: 20%%}")
		return ""
	}
	metric := ""
	r.TopK = 10
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		path := "top." + k.Value
		if v.Kind != yaml.ScalarNode {
			d.errorf(v, path, "must be a single value")
			continue
		}
		switch k.Value {
		case "by":
			if v.Value != "bytes" && v.Value != "packets" && v.Value != "flows" {
				d.errorf(v, path, "%q: must be bytes, packets or flows", v.Value)
				continue
			}
			metric = v.Value
		case "k":
			x, err := strconv.Atoi(v.Value)
			if err != nil || x < 1 {
				d.errorf(v, path, "%q: must be a whole number >= 1", v.Value)
				continue
			}
			r.TopK = x
		case "share":
			q, err := ParseQuantity(v.Value)
			switch {
			case err != nil:
				d.errorf(v, path, "%v", err)
			case q.Unit != UnitPercent && q.Unit != UnitNone:
				d.errorf(v, path, "%s: a share is a percentage (20%%) or a fraction (0.2)", v.Value)
			case q.Unit == UnitNone && q.Value > 1:
				d.errorf(v, path, "%s: a fraction is at most 1 (did you mean %s%%?)", v.Value, v.Value)
			case q.Value <= 0 || q.Value > 1:
				d.errorf(v, path, "%s: must be > 0 and at most 100%%", v.Value)
			default:
				r.TopShare = q.Value
			}
		default:
			d.errorf(k, path, "unknown field%s", didYouMean(k.Value, []string{"by", "k", "share"}))
		}
	}
	if metric == "" && !d.failed {
		d.errorf(n, "top.by", "required (bytes, packets or flows)")
	}
	return metric
}

// message parses the message template and checks its placeholders.
func (d *ruleDecoder) message(r *decodedRule, groupBy []string) {
	s, n := d.str("message")
	if n == nil {
		return
	}
	t, err := ParseTemplate(s)
	if err != nil {
		te := err.(*TemplateError)
		d.failed = true
		d.l.exprErrors(d.src, n, d.label, "message", []*exprError{templateErr(s, te.Offset, te.Msg)})
		return
	}
	allowed := append(append([]string(nil), templateNames...), groupBy...)
	allowed = append(allowed, learnTemplateNamesOf(r)...)
	if r.Aggregate == PerFlow {
		// A per-flow alert has the flow itself at hand.
		allowed = append(allowed, flow.FieldNames()...)
	}
	for _, p := range t.parts {
		if p.name == "" || slices.Contains(allowed, p.name) {
			continue
		}
		msg := fmt.Sprintf("unknown placeholder {%s}%s", p.name, didYouMean(p.name, allowed))
		if _, isField := flow.Lookup(p.name); isField {
			msg = fmt.Sprintf("placeholder {%s} is not in group_by (the alert only carries group_by fields)", p.name)
		}
		d.failed = true
		d.l.exprErrors(d.src, n, d.label, "message", []*exprError{templateErr(s, p.off, msg)})
	}
	r.Message = t
}

func templateErr(s string, byteOff int, msg string) *exprError {
	l, col := lineCol(s, utf8.RuneCountInString(s[:byteOff]))
	return &exprError{Line: l, Col: col, Msg: msg}
}
