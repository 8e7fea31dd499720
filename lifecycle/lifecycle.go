// Package lifecycle starts a daemon's components in dependency order and
// stops them in reverse, every goroutine a component begins accounted for
// by its Stop.
//
// A component is built (New, Open, Listen: nothing running yet), then
// handed to a Group, which starts it after those it depends on, given
// before it. Group.Stop stops the started ones last first; a Start that
// fails stops those already started. Run turns a function that works
// until its context ends (a pipeline, a listener, a reloader) into a
// component whose Stop cancels it and waits for it to return.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Component is one part of a running daemon.
type Component interface {
	// Name names the component in errors and logs.
	Name() string
	// Start begins the component's work and returns without blocking.
	Start(ctx context.Context) error
	// Stop ends that work and returns once every goroutine Start began
	// has returned; ctx bounds what may wait (deliveries, drains).
	Stop(ctx context.Context) error
}

// Group runs components: started in the order given, stopped in reverse.
type Group struct {
	mu      sync.Mutex
	started []Component
}

// Start starts each component in turn. When one fails, those already
// started are stopped in reverse and the error names the one that failed.
func (g *Group) Start(ctx context.Context, cs ...Component) error {
	for _, c := range cs {
		if err := c.Start(ctx); err != nil {
			err = fmt.Errorf("%s: %w", c.Name(), err)
			return errors.Join(err, g.Stop(ctx))
		}
		g.mu.Lock()
		g.started = append(g.started, c)
		g.mu.Unlock()
	}
	return nil
}

// Stop stops the started components, the last started first, and returns
// their errors joined, each named. A second Stop does nothing.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	started := g.started
	g.started = nil
	g.mu.Unlock()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", started[i].Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Funcs is a component made of two functions; a nil one does nothing.
type Funcs struct {
	N       string
	OnStart func(ctx context.Context) error
	OnStop  func(ctx context.Context) error
}

// Name returns N.
func (f Funcs) Name() string { return f.N }

// Start calls OnStart.
func (f Funcs) Start(ctx context.Context) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx)
}

// Stop calls OnStop.
func (f Funcs) Stop(ctx context.Context) error {
	if f.OnStop == nil {
		return nil
	}
	return f.OnStop(ctx)
}

// Runner is the component Run returns.
type Runner struct {
	name   string
	run    func(ctx context.Context) error
	failed func(error)

	cancel context.CancelFunc
	done   chan struct{}
}

// Run returns a component that runs fn on a goroutine of its own from
// Start until Stop cancels fn's context; Stop waits for fn to return,
// whatever Stop's own context says (fn decides what it finishes, such as
// a queue to drain). An error fn returns other than context.Canceled
// goes to failed (which may be nil): the daemon then stops.
func Run(name string, fn func(ctx context.Context) error, failed func(error)) *Runner {
	return &Runner{name: name, run: fn, failed: failed}
}

// Name returns the name given to Run.
func (r *Runner) Name() string { return r.name }

// Start begins fn. Its context does not derive from ctx: only Stop ends it.
func (r *Runner) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		if err := r.run(ctx); err != nil && !errors.Is(err, context.Canceled) && r.failed != nil {
			r.failed(fmt.Errorf("%s: %w", r.name, err))
		}
	}()
	return nil
}

// Stop cancels fn's context and waits for fn to return.
func (r *Runner) Stop(context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	<-r.done
	return nil
}
