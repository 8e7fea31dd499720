package notifiers

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"
)

// Deps is what a notifier may need from the process that builds it.
type Deps struct {
	// Logger receives the notifier's own log lines (nil: slog.Default()).
	Logger *slog.Logger
	// Stdout is where the stdout notifier writes (nil: os.Stdout).
	Stdout io.Writer
	// Version is flowguard's version, for formats that carry it (CEF).
	Version string
	// Firing, when set, tells whether the alert of an id is still firing
	// in the process's own record of alerts (the daemon sets it from its
	// alert tracker; nil: unknown). Notifiers that keep an alert alive
	// elsewhere until a deadline (alertmanager's endsAt) extend it while
	// it says so. It must be safe for concurrent use and not block.
	Firing FiringFunc
}

// FiringFunc reports whether the alert with the given id is firing: false
// once it is resolved, or when it is not known (forgotten, never seen).
type FiringFunc func(alertID string) bool

// Factory builds a notifier from its configuration. settings holds the
// notifier's type-specific keys (name, type and delivery removed); a
// factory decodes them with Decode, validates them, and must not touch
// the network (connections are made on the first Notify), so that
// building doubles as a configuration check.
type Factory func(name string, settings *yaml.Node, deps Deps) (Notifier, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a notifier type available to configurations as
// `type: typ`. It is meant to be called from an init function of the
// notifier's package; registering a type twice panics.
func Register(typ string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if f == nil {
		panic("notifiers: Register " + typ + " with a nil factory")
	}
	if _, dup := registry[typ]; dup {
		panic("notifiers: Register called twice for type " + typ)
	}
	registry[typ] = f
}

// Types lists the registered notifier types in order.
func Types() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ts := make([]string, 0, len(registry))
	for t := range registry {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

func lookup(typ string) (Factory, error) {
	registryMu.RLock()
	f, ok := registry[typ]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("type: %q is not one of %v", typ, Types())
	}
	return f, nil
}
