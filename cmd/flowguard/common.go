package main

import "github.com/flowguard/flowguard/config"

// loadConfig reads the config file; any error in it is a usage error,
// reported as config check reports it: every problem of the file at once,
// each at file:line:col.
func loadConfig(path string) (*config.Config, error) {
	c, err := config.Load(path)
	if err != nil {
		if _, _, errs := config.Check(path); len(errs) > 0 {
			return nil, usagef("%s in the config:\n%w", plural(len(errs), "error"), errs)
		}
		return nil, usageError{err}
	}
	return c, nil
}
