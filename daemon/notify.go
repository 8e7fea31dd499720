package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowguard/flowguard/lifecycle"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/notifiers/stdout"
	"github.com/flowguard/flowguard/rules"
)

// notify returns the dispatcher in service (swapped on reload).
func (d *Daemon) notify() *notifiers.Dispatcher { return d.notifyPtr.Load() }

// buildNotify builds the dispatcher a notifiers section describes, or one
// that writes to stdout when it names none.
func (d *Daemon) buildNotify(c notifiers.Config) (*notifiers.Dispatcher, error) {
	// Firing lets notifiers keep alerts alive elsewhere while the tracker
	// has them firing (alertmanager's endsAt); every reload's dispatcher
	// gets it again.
	deps := notifiers.Deps{Logger: d.log, Stdout: d.out, Version: d.opts.Version, Firing: d.tracker.Firing}
	if len(c.Notifiers) > 0 {
		n, err := notifiers.Build(c, deps)
		if err != nil {
			return nil, ConfigError{fmt.Errorf("%s: %w", d.cfgPath, err)}
		}
		return n, nil
	}
	so, err := stdout.New("stdout", stdout.Config{Format: d.format}, d.out)
	if err != nil {
		return nil, configErrorf("--format: %v", err)
	}
	return notifiers.New([]notifiers.Target{{Notifier: so, Type: "stdout"}}, nil, deps)
}

// checkNotify rejects rules that name notifiers the dispatcher lacks.
func checkNotify(set *rules.Set, disp *notifiers.Dispatcher) error {
	var errs []error
	for _, r := range set.Rules {
		for _, n := range r.Notify {
			if !disp.Has(n) {
				errs = append(errs, fmt.Errorf("%s:%d: rule %q: notify: no notifier named %q", r.File, r.Line, r.ID, n))
			}
		}
	}
	if len(errs) > 0 {
		return ConfigError{errors.Join(errs...)}
	}
	return nil
}

// notifiersComponent closes the dispatcher in service when stopped,
// delivering what it holds until ctx's deadline (the rest stays in its
// spools), and waits for the dispatchers reloads replaced until the same
// deadline.
func (d *Daemon) notifiersComponent() lifecycle.Component {
	return lifecycle.Funcs{N: "notifiers", OnStop: func(ctx context.Context) error {
		err := d.notify().Close(ctx)
		stop := context.AfterFunc(ctx, d.drainCancel)
		d.drains.Wait()
		stop()
		return err
	}}
}
