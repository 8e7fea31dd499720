package notifiers

import (
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
)

// Config is the `notifiers:` and `routes:` sections of flowguard.yaml. It
// can be embedded in a larger configuration with `yaml:",inline"`.
//
//	notifiers:
//	  - name: siem
//	    type: syslog
//	    address: siem.example:6514
//	  - name: soc-chat
//	    type: webhook
//	    url: https://hooks.example/${SOC_TOKEN}
//	    delivery: {spool_dir: /var/lib/flowguard/spool}
//	routes:
//	  - severity: [high, critical]
//	    notifiers: [siem, soc-chat]
//	  - default: true
//	    notifiers: [siem]
type Config struct {
	Notifiers []NotifierConfig `yaml:"notifiers"`
	Routes    []Route          `yaml:"routes"`
}

// NotifierConfig is one entry of `notifiers:`: a name, a type, the
// delivery settings every notifier shares, and the type's own keys.
type NotifierConfig struct {
	Name     string
	Type     string
	Delivery Delivery
	// Settings holds the type-specific keys, for the type's Factory.
	Settings yaml.Node
	// Line is where the entry starts in the file, for error messages.
	Line int
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// UnmarshalYAML splits the entry into the shared keys and the rest.
func (c *NotifierConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return decodeError(fmt.Errorf("line %d: a notifier is a mapping with name, type and the type's keys", n.Line))
	}
	c.Line = n.Line
	rest := yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			c.Name = v.Value
		case "type":
			c.Type = v.Value
		case "delivery":
			if err := Decode(v, &c.Delivery); err != nil {
				return decodeError(fmt.Errorf("delivery: %w", err))
			}
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	c.Settings = rest
	return nil
}

// Delivery tunes how the Dispatcher hands alerts to one notifier. Every
// field has a default; see DefaultDelivery.
type Delivery struct {
	// QueueSize is how many alerts wait in memory for the notifier. When
	// full, new alerts are dropped (counted), never waited for; with a
	// spool they go to the spool instead (see SpoolDir).
	QueueSize int `yaml:"queue_size"`
	// Timeout bounds one delivery attempt.
	Timeout Duration `yaml:"timeout"`
	Retry   Retry    `yaml:"retry"`
	// SpoolDir, when set, writes every alert to disk (in
	// SpoolDir/<notifier name>/) before it is delivered and removes it once
	// delivered, so that neither a full queue, an outage, a shutdown nor a
	// crash loses it.
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMax caps the alerts held in the spool; beyond, alerts are dropped.
	SpoolMax int `yaml:"spool_max"`
	// SpoolMaxBytes caps the spool's size on disk ("256MiB"); beyond,
	// alerts are dropped.
	SpoolMaxBytes ByteSize  `yaml:"spool_max_bytes"`
	RateLimit     RateLimit `yaml:"rate_limit"`
}

// Retry is the exponential backoff between attempts at one alert.
type Retry struct {
	Initial Duration `yaml:"initial"` // first wait (default 1s)
	Max     Duration `yaml:"max"`     // longest wait (default 1m)
	// MaxElapsed gives up on an alert (counted as failed) after this long;
	// 0 retries until delivered or until Close.
	MaxElapsed Duration `yaml:"max_elapsed"`
}

// RateLimit lets at most PerRule alerts of one rule through per Interval;
// the rest are counted as rate limited and summarised in one alert when
// the interval ends.
type RateLimit struct {
	PerRule  int      `yaml:"per_rule"` // 0: no limit
	Interval Duration `yaml:"interval"` // default 1m
}

// DefaultDelivery returns the delivery settings used where the
// configuration says nothing.
func DefaultDelivery() Delivery {
	return Delivery{
		QueueSize:     1000,
		Timeout:       Duration(10 * time.Second),
		Retry:         Retry{Initial: Duration(time.Second), Max: Duration(time.Minute)},
		SpoolMax:      100000,
		SpoolMaxBytes: 256 << 20,
		RateLimit:     RateLimit{Interval: Duration(time.Minute)},
	}
}

// withDefaults fills the zero fields of d from DefaultDelivery.
func (d Delivery) withDefaults() Delivery {
	def := DefaultDelivery()
	if d.QueueSize == 0 {
		d.QueueSize = def.QueueSize
	}
	if d.Timeout == 0 {
		d.Timeout = def.Timeout
	}
	if d.Retry.Initial == 0 {
		d.Retry.Initial = def.Retry.Initial
	}
	if d.Retry.Max == 0 {
		d.Retry.Max = def.Retry.Max
	}
	if d.Retry.Max < d.Retry.Initial {
		d.Retry.Max = d.Retry.Initial
	}
	if d.SpoolMax == 0 {
		d.SpoolMax = def.SpoolMax
	}
	if d.SpoolMaxBytes == 0 {
		d.SpoolMaxBytes = def.SpoolMaxBytes
	}
	if d.RateLimit.Interval == 0 {
		d.RateLimit.Interval = def.RateLimit.Interval
	}
	return d
}

func (d Delivery) validate() error {
	var errs []error
	if d.QueueSize < 0 {
		errs = append(errs, errors.New("delivery.queue_size: must be >= 0"))
	}
	if d.SpoolMax < 0 {
		errs = append(errs, errors.New("delivery.spool_max: must be >= 0"))
	}
	if d.SpoolMaxBytes < 0 {
		errs = append(errs, errors.New("delivery.spool_max_bytes: must be >= 0"))
	}
	if d.RateLimit.PerRule < 0 {
		errs = append(errs, errors.New("delivery.rate_limit.per_rule: must be >= 0"))
	}
	return errors.Join(errs...)
}

// Route sends the alerts it matches to its notifiers. Within a route every
// criterion given must match (and), and a criterion matches when any of
// its values does (or). Routes are tried in order; the first match wins
// unless it says continue: true. Default routes apply to alerts no other
// route matched. With no routes at all, every notifier gets every alert.
// A rule's own `notify:` list bypasses the routes.
type Route struct {
	// Rules are rule ids or shell patterns ("scan-*").
	Rules []string `yaml:"rules"`
	// Severity lists severities (info, low, medium, high, critical).
	Severity []string `yaml:"severity"`
	// MinSeverity matches this severity and above.
	MinSeverity string `yaml:"min_severity"`
	// Tags match when the alert carries any of them (T1046, scan).
	Tags      []string `yaml:"tags"`
	Notifiers []string `yaml:"notifiers"`
	Continue  bool     `yaml:"continue"`
	Default   bool     `yaml:"default"`
}

// Validate checks the sections without building any notifier: names are
// unique and well formed, types are registered, routes name existing
// notifiers and valid severities. All errors are reported at once.
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, nc := range c.Notifiers {
		where := fmt.Sprintf("line %d: notifiers[%d]", nc.Line, i)
		if nc.Name != "" {
			where += fmt.Sprintf(" %q", nc.Name)
		}
		switch {
		case nc.Name == "":
			errs = append(errs, fmt.Errorf("%s: name: must be set", where))
		case !nameRE.MatchString(nc.Name):
			errs = append(errs, fmt.Errorf("%s: name: use letters, digits, '.', '_' and '-'", where))
		case seen[nc.Name]:
			errs = append(errs, fmt.Errorf("%s: name: defined twice", where))
		}
		seen[nc.Name] = true
		if nc.Type == "" {
			errs = append(errs, fmt.Errorf("%s: type: must be one of %v", where, Types()))
		} else if _, err := lookup(nc.Type); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if err := nc.Delivery.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d]", i)
		if len(r.Notifiers) == 0 {
			errs = append(errs, fmt.Errorf("%s: notifiers: must name at least one notifier", where))
		}
		for _, n := range r.Notifiers {
			if !seen[n] {
				errs = append(errs, fmt.Errorf("%s: notifiers: %q is not a configured notifier", where, n))
			}
		}
		for _, s := range r.Severity {
			if alert.SeverityRank(s) < 0 {
				errs = append(errs, fmt.Errorf("%s: severity: %q is not one of %v", where, s, alert.Severities))
			}
		}
		if r.MinSeverity != "" && alert.SeverityRank(r.MinSeverity) < 0 {
			errs = append(errs, fmt.Errorf("%s: min_severity: %q is not one of %v", where, r.MinSeverity, alert.Severities))
		}
		for _, p := range r.Rules {
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s: rules: %q: %w", where, p, err))
			}
		}
		if r.Default && (len(r.Rules) > 0 || len(r.Severity) > 0 || r.MinSeverity != "" || len(r.Tags) > 0) {
			errs = append(errs, fmt.Errorf("%s: default: a default route takes no rules, severity, min_severity or tags", where))
		}
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration written as "30s", "5m", "1h".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return decodeError(fmt.Errorf("line %d: %q is not a duration like 30s, 5m, 1h", n.Line, n.Value))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written as a number with an optional unit:
// "1048576", "512KiB", "256MiB", "1GiB" (powers of 1024) or "500kB",
// "100MB", "1GB" (powers of 1000).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// UnmarshalYAML parses a size such as "256MiB".
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, mult := strings.TrimSpace(n.Value), int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	x, err := strconv.ParseInt(v, 10, 64)
	if err != nil || x < 0 || x > math.MaxInt64/mult {
		return decodeError(fmt.Errorf("line %d: %q is not a size like 1048576, 512KiB, 256MiB, 1GiB", n.Line, n.Value))
	}
	*b = ByteSize(x * mult)
	return nil
}

// decodeError returns err as a *yaml.TypeError, which the YAML decoder
// records before carrying on with the rest of the file (any other error
// from an UnmarshalYAML method stops it), so one check reports every
// problem. A joined error gives one entry a line.
func decodeError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && err == error(te) {
		return te
	}
	return &yaml.TypeError{Errors: strings.Split(err.Error(), "\n")}
}

// Decode decodes a YAML mapping into v (a pointer to a struct) strictly:
// a key that matches no field is an error naming its line and the
// allowed keys, so a typo never silently leaves a default in place.
// Notifier factories use it for their settings.
func Decode(n *yaml.Node, v any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	if err := checkKeys(n, reflect.TypeOf(v)); err != nil {
		return err
	}
	return n.Decode(v)
}

// checkKeys walks mapping nodes alongside struct types and reports keys
// that no yaml tag names.
func checkKeys(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type mismatch
		}
		if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
			return nil
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				sort.Strings(names)
				errs = append(errs, fmt.Errorf("line %d: %s: unknown key; allowed: %s", k.Line, k.Value, strings.Join(names, ", ")))
				continue
			}
			if err := checkKeys(v, ft); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k.Value, err))
			}
		}
		return errors.Join(errs...)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		var errs []error
		for _, c := range n.Content {
			if err := checkKeys(c, t.Elem()); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return nil
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			collectFields(ft, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}
