package intel

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"
)

// DefaultReloadInterval is how often list files are checked for change.
const DefaultReloadInterval = time.Minute

// Config is the intel section of the enrichment configuration.
type Config struct {
	// Lists maps a list's name (what src_lists and dst_lists hold) to its
	// file.
	Lists map[string]string `yaml:"lists"`
	// ReloadInterval is how often the files are checked for change (0:
	// DefaultReloadInterval; negative: never).
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// WithDefaults returns c with zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	return c
}

// Validate reports every problem at once, each naming its field relative
// to the section ("lists.spamhaus-drop: ..."). It checks that each file
// can be opened; Open parses them.
func (c Config) Validate() error {
	var errs []error
	if len(c.Lists) > MaxLists {
		errs = append(errs, fmt.Errorf("lists: %d lists, at most %d", len(c.Lists), MaxLists))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Lists)) {
		p := c.Lists[name]
		switch {
		case name == "":
			errs = append(errs, errors.New("lists: a list has an empty name"))
		case p == "":
			errs = append(errs, fmt.Errorf("lists.%s: empty path", name))
		default:
			f, err := os.Open(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("lists.%s: %w", name, err))
				continue
			}
			f.Close()
		}
	}
	return errors.Join(errs...)
}
