package stdout

import (
	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/notifiers"
)

func init() {
	notifiers.Register("stdout", func(name string, settings *yaml.Node, deps notifiers.Deps) (notifiers.Notifier, error) {
		var cfg Config
		if err := notifiers.Decode(settings, &cfg); err != nil {
			return nil, err
		}
		return New(name, cfg, deps.Stdout)
	})
}
