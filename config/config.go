// Package config reads flowguard.yaml. Every section has defaults, so an
// empty file (or none) is a working configuration. Unknown keys are errors
// naming file:line, so a typo never silently leaves a default in place.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/engine/window/redis"
	"github.com/flowguard/flowguard/enrich"
	"github.com/flowguard/flowguard/ingest/collector"
	"github.com/flowguard/flowguard/ingest/meter"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/rules"
	"github.com/flowguard/flowguard/web"
)

// Config is the whole configuration.
type Config struct {
	// Rules are rule files or folders; empty means the bundled examples.
	Rules []string `yaml:"rules"`
	// RulesAllowEmpty accepts rule files that define nothing. By default
	// such a file, most often one truncated by a failed copy, is an error.
	RulesAllowEmpty bool `yaml:"rules_allow_empty"`
	// RulesLimits bound each rule condition (nodes, depth, ranges,
	// literals, list items, cost per flow); zero fields keep the defaults.
	RulesLimits rules.Limits `yaml:"rules_limits"`
	// Listen are the UDP listeners for flow export. Empty means the
	// defaults: NetFlow on :2055, IPFIX on :4739, sFlow on :6343 (each
	// port accepts every version; the names are for metrics).
	Listen []collector.Config `yaml:"listen"`
	// Sampling sets sampling rates the exporters do not send themselves.
	Sampling Sampling `yaml:"sampling"`
	// ExporterClock: how NetFlow/IPFIX exporters' clocks are measured and
	// corrected.
	ExporterClock ExporterClock `yaml:"exporter_clock"`
	// Store holds the windows: "memory" (default), a Redis URL, or a
	// mapping of Redis settings (see engine/window/redis).
	Store  Store  `yaml:"store"`
	Engine Engine `yaml:"engine"`
	Meter  Meter  `yaml:"meter"`
	// Ingest bounds what export datagrams may cost (see ingest.go).
	Ingest Ingest `yaml:"ingest"`
	// Notifiers and routes: where alerts go. With none, alerts go to
	// stdout (run) as JSON lines.
	Notifiers notifiers.Config `yaml:",inline"`
	// Enrich configures GeoIP/ASN, named networks and threat lists.
	Enrich enrich.Config `yaml:"enrich"`
	Reload Reload        `yaml:"reload"`
	HTTP   HTTP          `yaml:"http"`
	Log    Log           `yaml:"log"`
	// Shutdown bounds how long stopping takes (see Shutdown).
	Shutdown Shutdown `yaml:"shutdown"`
	// Learn: where the rules that learn keep what they learned (learn.go).
	Learn Learn `yaml:"learn"`

	path string
}

// DefaultListen are the listeners of a configuration that names none.
func DefaultListen() []collector.Config {
	return []collector.Config{
		{Name: "netflow", Address: ":2055"},
		{Name: "ipfix", Address: ":4739"},
		{Name: "sflow", Address: ":6343"},
	}
}

// Sampling configures sampling rates.
type Sampling struct {
	// Default applies to exporters that announce no rate (0: 1, unsampled).
	Default uint32 `yaml:"default"`
	// Exporters forces a rate per exporter address, over what it announces.
	Exporters map[string]uint32 `yaml:"exporters"`
}

// ExporterClock configures the per-exporter clock offset: export header
// time against receive time, estimated per exporter and observation domain.
type ExporterClock struct {
	// Correction places each exporter's flows on the collector's clock by
	// its measured offset, when over 2 s (default true).
	Correction *bool `yaml:"correction"`
	// SkewWarning is the skew logged (once when passed, once when back
	// within half) per exporter. Default 10s; 0s never logs.
	SkewWarning *Duration `yaml:"skew_warning"`
}

// Corrects reports whether flows are moved onto the collector's clock.
func (c ExporterClock) Corrects() bool { return c.Correction == nil || *c.Correction }

// Warning returns the skew that is logged, negative for never.
func (c ExporterClock) Warning() time.Duration {
	switch {
	case c.SkewWarning == nil:
		return netflow.DefaultClockSkewWarning
	case *c.SkewWarning == 0:
		return -1
	}
	return time.Duration(*c.SkewWarning)
}

// Store selects where windows live. Redis is nil for the memory store.
type Store struct {
	Redis *rediswindow.Config
}

// UnmarshalYAML reads "memory", a Redis URL (redis://, rediss://,
// redis+cluster://), or a mapping of Redis settings.
func (s *Store) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch v := n.Value; {
		case v == "" || v == "memory":
			s.Redis = nil
		case strings.HasPrefix(v, "redis://"), strings.HasPrefix(v, "rediss://"),
			strings.HasPrefix(v, "redis+cluster://"), strings.HasPrefix(v, "rediss+cluster://"):
			c := rediswindow.DefaultConfig()
			c.URL = v
			s.Redis = &c
		default:
			return decodeError(fmt.Errorf("line %d: store: %q is neither memory nor a redis:// URL", n.Line, v))
		}
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 || n.Content[0].Value != "redis" {
		return decodeError(fmt.Errorf("line %d: store: give memory, a redis:// URL, or redis: {url: ..., ...}", n.Line))
	}
	if err := knownKeys(n.Content[1], rediswindow.Config{}, "store.redis"); err != nil {
		return decodeError(err)
	}
	c := rediswindow.DefaultConfig()
	if err := n.Content[1].Decode(&c); err != nil {
		return decodeError(err)
	}
	s.Redis = &c
	return nil
}

// knownKeys rejects keys of a mapping that v's yaml tags do not name, and
// in nested mappings of struct fields (store.redis.tls): a custom decoder
// does not inherit the file decoder's strictness.
func knownKeys(n *yaml.Node, v any, path string) error {
	return knownKeysOf(n, reflect.TypeOf(v), path)
}

func knownKeysOf(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	known := map[string]reflect.Type{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			known[name] = t.Field(i).Type
		}
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := known[k.Value]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("line %d: %s: unknown key %q", k.Line, path, k.Value))
		case ft.Kind() == reflect.Struct:
			errs = append(errs, knownKeysOf(n.Content[i+1], ft, path+"."+k.Value))
		}
	}
	return errors.Join(errs...)
}

// Reload configures reloading without a restart (SIGHUP always works).
type Reload struct {
	// Watch is how often the config and rule files are checked for
	// change; a change reloads them. Default 5s; 0s turns watching off.
	Watch *Duration `yaml:"watch"`
}

// WatchInterval returns the watch interval, 0 when off.
func (r Reload) WatchInterval() time.Duration {
	if r.Watch == nil {
		return 5 * time.Second
	}
	return time.Duration(*r.Watch)
}

// HTTP configures the server for /metrics, /healthz and the API: address
// (default 127.0.0.1:9310; "off" disables), TLS, authentication, timeouts
// and limits (see web.Config).
type HTTP = web.Config

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// Engine tunes rule evaluation.
type Engine struct {
	// MaxKeys caps the groups each rule's window holds (0: 100000).
	MaxKeys int `yaml:"max_keys"`
	// QueueFlows bounds the flows waiting for the engine (0: 65536,
	// about 40 MB); listeners wait when it is full.
	QueueFlows int `yaml:"queue_flows"`
	// AllowedLateness is how far behind the watermark a flow still
	// counts in its window (0: 60s). See README "Time".
	AllowedLateness Duration `yaml:"allowed_lateness"`
	// FutureTolerance is how far ahead of the watermark a flow may be
	// stamped before it is clamped to it (0: 30s).
	FutureTolerance Duration `yaml:"future_tolerance"`
}

// DefaultQueueFlows is the engine queue's bound when queue_flows is 0.
const DefaultQueueFlows = 65536

// QueueLimit returns the bound on the flows waiting for the engine.
func (e Engine) QueueLimit() int {
	if e.QueueFlows <= 0 {
		return DefaultQueueFlows
	}
	return e.QueueFlows
}

// Meter tunes how packets (pcap replay, live capture) become flows.
type Meter struct {
	ActiveTimeout Duration `yaml:"active_timeout"` // a long flow is exported this often (0: 60s)
	IdleTimeout   Duration `yaml:"idle_timeout"`   // a flow with no packet for this long ends (0: 15s)
	MaxFlows      int      `yaml:"max_flows"`      // flows tracked at once (0: the meter's default)
}

// MeterConfig returns the meter's configuration for this section.
func (m Meter) MeterConfig() meter.Config {
	c := meter.DefaultConfig()
	if m.ActiveTimeout > 0 {
		c.ActiveTimeout = time.Duration(m.ActiveTimeout)
	}
	if m.IdleTimeout > 0 {
		c.IdleTimeout = time.Duration(m.IdleTimeout)
	}
	if m.MaxFlows > 0 {
		c.MaxFlows = m.MaxFlows
	}
	return c
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

// Path is the file the configuration came from ("" for defaults).
func (c *Config) Path() string { return c.path }

// Load reads a configuration file; an empty path gives the defaults.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path == "" {
		c.withDefaults()
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.path = path
	c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// withDefaults fills what the file left out.
func (c *Config) withDefaults() {
	if len(c.Listen) == 0 {
		c.Listen = DefaultListen()
	}
	c.HTTP.SetDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

func (c *Config) validate() error {
	var errs []error
	names := map[string]bool{}
	for i, l := range c.Listen {
		if err := l.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("listen[%d]: %w", i, err))
		}
		if l.Name != "" && names[l.Name] {
			errs = append(errs, fmt.Errorf("listen[%d]: name: %q used twice", i, l.Name))
		}
		names[l.Name] = true
	}
	for a := range c.Sampling.Exporters {
		if _, err := netip.ParseAddr(a); err != nil {
			errs = append(errs, fmt.Errorf("sampling.exporters: %q is not an address", a))
		}
	}
	if len(c.Notifiers.Notifiers) > 0 {
		if err := c.Notifiers.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Store.Redis != nil {
		if err := c.Store.Redis.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	if err := c.Enrich.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not one of text, json", c.Log.Format))
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Engine.MaxKeys < 0 {
		errs = append(errs, errors.New("engine.max_keys: must be >= 0"))
	}
	if c.Engine.QueueFlows < 0 {
		errs = append(errs, errors.New("engine.queue_flows: must be >= 0"))
	}
	if err := c.Ingest.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Meter.MaxFlows < 0 {
		errs = append(errs, errors.New("meter.max_flows: must be >= 0"))
	}
	if err := c.RulesLimits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rules_limits: %w", err))
	}
	return errors.Join(errs...)
}

// RulesOptions are the options rule files load with.
func (c *Config) RulesOptions() rules.Options {
	return rules.Options{Limits: c.RulesLimits, AllowEmpty: c.RulesAllowEmpty}
}
