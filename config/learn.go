package config

import (
	"path/filepath"
	"time"
)

// Learn configures where the rules that learn (baseline, new_terms,
// beacon; see rules/README.md) keep what they learned between runs.
//
//	learn:
//	  state_dir: /var/lib/flowguard/learned   # learned.json is written here
//	  save_every: 5m                          # and at stop
type Learn struct {
	// StateDir is the folder of learned.json. Empty: "learned" beside
	// the first notifier spool_dir (the daemon's data folder,
	// /var/lib/flowguard in the example config); with no spool either,
	// learned state is kept in memory only (and in Redis with the Redis
	// store). "off" disables the file even then.
	StateDir string `yaml:"state_dir"`
	// SaveEvery is how often learned state is saved (0: 5m); it is also
	// saved at stop, and loaded at start.
	SaveEvery Duration `yaml:"save_every"`
}

// DefaultLearnSaveEvery is Learn.SaveEvery's default.
const DefaultLearnSaveEvery = 5 * time.Minute

// SaveInterval returns how often learned state is saved.
func (l Learn) SaveInterval() time.Duration {
	if l.SaveEvery <= 0 {
		return DefaultLearnSaveEvery
	}
	return time.Duration(l.SaveEvery)
}

// LearnStateDir returns the folder learned state is saved in, or "" when
// it is kept in memory only (see Learn.StateDir).
func (c *Config) LearnStateDir() string {
	switch c.Learn.StateDir {
	case "off":
		return ""
	case "":
		for _, n := range c.Notifiers.Notifiers {
			if d := n.Delivery.SpoolDir; d != "" {
				return filepath.Join(filepath.Dir(filepath.Clean(d)), "learned")
			}
		}
		return ""
	}
	return c.Learn.StateDir
}
