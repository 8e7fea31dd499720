package main

import "github.com/flowguard/flowguard/config"

// loadConfig reads the config file; any error in it is a usage error.
func loadConfig(path string) (*config.Config, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}
