package geoip

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Defaults of Config.
const (
	DefaultCacheSize      = 65536
	DefaultReloadInterval = time.Minute
)

// Config is the geoip section of the enrichment configuration.
type Config struct {
	// Databases are .mmdb files, of any kind in any order; for a field
	// that several know (the country of a City and a Country database),
	// the first file listed wins.
	Databases []string `yaml:"databases"`
	// CacheSize is how many addresses the engine's cache holds (0:
	// DefaultCacheSize).
	CacheSize int `yaml:"cache_size"`
	// ReloadInterval is how often the files are checked for change (0:
	// DefaultReloadInterval; negative: never).
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// WithDefaults returns c with zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	return c
}

// Validate reports every problem at once, each naming its field relative
// to the section ("databases[1]: ..."). It checks that each file can be
// opened; Open reads them.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, p := range c.Databases {
		if p == "" {
			errs = append(errs, fmt.Errorf("databases[%d]: empty path", i))
			continue
		}
		if j, dup := seen[p]; dup {
			errs = append(errs, fmt.Errorf("databases[%d]: %s already listed as databases[%d]", i, p, j))
			continue
		}
		seen[p] = i
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("databases[%d]: %w", i, err))
			continue
		}
		f.Close()
	}
	if c.CacheSize < 0 || c.CacheSize > 1<<26 {
		errs = append(errs, fmt.Errorf("cache_size: %d: must be between 0 (default %d) and %d", c.CacheSize, DefaultCacheSize, 1<<26))
	}
	return errors.Join(errs...)
}
