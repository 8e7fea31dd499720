// Package config reads flowguard.yaml. Every section has defaults, so an
// empty file (or none) is a working configuration. Unknown keys are errors
// naming file:line, so a typo never silently leaves a default in place.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration.
type Config struct {
	// Rules are rule files or folders; empty means the bundled examples.
	Rules  []string `yaml:"rules"`
	Engine Engine   `yaml:"engine"`
	Meter  Meter    `yaml:"meter"`

	path string
}

// Engine tunes rule evaluation.
type Engine struct {
	// MaxKeys caps the groups each rule's window holds (0: 100000).
	MaxKeys int `yaml:"max_keys"`
}

// Meter tunes how packets (pcap replay, live capture) become flows.
type Meter struct {
	ActiveTimeout Duration `yaml:"active_timeout"` // a long flow is exported this often (0: 60s)
	IdleTimeout   Duration `yaml:"idle_timeout"`   // a flow with no packet for this long ends (0: 15s)
	MaxFlows      int      `yaml:"max_flows"`      // flows tracked at once (0: the meter's default)
}

// Duration is a time.Duration written as "30s", "5m", "1h".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like 30s, 5m, 1h", n.Line, n.Value)
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
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) validate() error {
	var errs []error
	if c.Engine.MaxKeys < 0 {
		errs = append(errs, errors.New("engine.max_keys: must be >= 0"))
	}
	if c.Meter.MaxFlows < 0 {
		errs = append(errs, errors.New("meter.max_flows: must be >= 0"))
	}
	return errors.Join(errs...)
}
