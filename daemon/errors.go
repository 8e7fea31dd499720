package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/examples"
	"github.com/flowguard/flowguard/rules"
)

// ConfigError marks an error of the config, rules or the files they name:
// the operator's to mend (the command exits 2), not a failure at run time.
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }
func (e ConfigError) Unwrap() error { return e.Err }

func configErrorf(format string, args ...any) error {
	return ConfigError{fmt.Errorf(format, args...)}
}

// LoadRules loads rule paths, or the bundled examples when there are
// none. Rule errors are printed to errw one a line and returned as a
// ConfigError that counts them.
func LoadRules(paths []string, opts rules.Options, errw io.Writer) (*rules.Set, error) {
	var (
		set *rules.Set
		err error
	)
	if len(paths) == 0 {
		set, err = opts.LoadFS(examples.Rules, "rules")
	} else {
		set, err = opts.Load(paths...)
	}
	if err != nil {
		var list rules.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(errw, e)
			}
			if len(list) == 1 {
				return nil, configErrorf("1 error in rules")
			}
			return nil, configErrorf("%d errors in rules", len(list))
		}
		return nil, ConfigError{err}
	}
	return set, nil
}

// NewLogger builds the daemon's logger from the log section.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
