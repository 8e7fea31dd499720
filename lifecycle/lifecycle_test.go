package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// recorder notes starts and stops in order.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) note(s string) { r.mu.Lock(); r.log = append(r.log, s); r.mu.Unlock() }

func (r *recorder) component(name string, failStart bool) Component {
	return Funcs{N: name,
		OnStart: func(context.Context) error {
			if failStart {
				return errors.New("cannot bind")
			}
			r.note("start " + name)
			return nil
		},
		OnStop: func(context.Context) error { r.note("stop " + name); return nil },
	}
}

func TestGroupStartsInOrderStopsInReverse(t *testing.T) {
	var r recorder
	var g Group
	if err := g.Start(context.Background(), r.component("store", false), r.component("engine", false), r.component("listeners", false)); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(context.Background()); err != nil { // a second Stop does nothing
		t.Fatal(err)
	}
	want := "start store, start engine, start listeners, stop listeners, stop engine, stop store"
	if got := strings.Join(r.log, ", "); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestGroupFailedStartStopsTheStarted(t *testing.T) {
	var r recorder
	var g Group
	err := g.Start(context.Background(), r.component("store", false), r.component("engine", false),
		r.component("listeners", true), r.component("http", false))
	if err == nil || err.Error() != "listeners: cannot bind" {
		t.Fatalf("error %v, want the failed component named", err)
	}
	want := "start store, start engine, stop engine, stop store"
	if got := strings.Join(r.log, ", "); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// Stop returns only once the goroutine Run began has returned, after it
// finished its work (a drain); an error other than cancellation is
// reported, named.
func TestRunIsAccountedFor(t *testing.T) {
	var drained atomic.Bool
	queue := make(chan int, 100)
	for i := range 100 {
		queue <- i
	}
	pipe := Run("pipeline", func(ctx context.Context) error {
		<-ctx.Done()
		for len(queue) > 0 {
			<-queue
		}
		drained.Store(true)
		return ctx.Err()
	}, func(err error) { t.Errorf("cancellation reported as a failure: %v", err) })
	var failed = make(chan error, 1)
	broken := Run("listener", func(context.Context) error { return fmt.Errorf("read: %w", errors.New("socket closed")) },
		func(err error) { failed <- err })
	var g Group
	if err := g.Start(context.Background(), pipe, broken); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; err.Error() != "listener: read: socket closed" {
		t.Errorf("failure %v", err)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !drained.Load() || len(queue) != 0 {
		t.Error("Stop returned before the pipeline drained its queue")
	}
}
