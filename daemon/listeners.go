package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/ingest"
	"github.com/flowguard/flowguard/ingest/collector"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
)

// listenerSet is the listeners component: one listener per listen entry,
// each with a decoder of every registered UDP protocol (sources.go) and a
// goroutine of its own from Start to Stop, decoding into the buffers sink
// lends and handing its batches to it.
// Reloads rebind those whose settings changed (reconfigure).
type listenerSet struct {
	log    *slog.Logger
	sink   ingest.Sink
	budget *netflow.TemplateBudget // the template memory all listeners share
	// failed hears of a listener that stops on an error (the daemon then
	// stops); set before Start.
	failed func(error)

	mu  sync.Mutex     // guards what follows against reloads and readers
	cfg *config.Config // listen, sampling, exporter_clock, ingest in service
	ls  []*listener
	ctx context.Context // the listeners' parent context, from Start
	end context.CancelFunc
}

type listener struct {
	*collector.Listener
	cfg  collector.Config
	decs []namedDecoder // one per registered protocol
	// The built-in protocols' decoders, for their ingest metrics.
	netflow *netflow.Decoder
	sflow   *sflow.Decoder
	cancel  context.CancelFunc
	done    chan struct{} // nil until started
}

// newListenerSet binds a listener per listen entry of cfg, none started.
func newListenerSet(cfg *config.Config, log *slog.Logger, sink ingest.Sink) (*listenerSet, error) {
	c := *cfg
	s := &listenerSet{log: log, sink: sink, cfg: &c, budget: netflow.NewTemplateBudget(cfg.Ingest.TemplateBytesTotal)}
	for _, lc := range cfg.Listen {
		l, err := s.bind(lc)
		if err != nil {
			s.close()
			return nil, err
		}
		s.ls = append(s.ls, l)
	}
	return s, nil
}

// Name names the component.
func (s *listenerSet) Name() string { return "listeners" }

// Start runs every bound listener.
func (s *listenerSet) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.end = context.WithCancel(context.Background())
	for _, l := range s.ls {
		s.run(l)
	}
	return nil
}

// Stop ends every listener and waits for its goroutine.
func (s *listenerSet) Stop(context.Context) error {
	s.end()
	for _, l := range s.list() {
		<-l.done
	}
	return nil
}

// close releases the sockets of a set never started.
func (s *listenerSet) close() {
	for _, l := range s.ls {
		l.Close()
	}
}

// bind binds one listener with decoders of its own. Called with mu held
// (or before the set is shared).
func (s *listenerSet) bind(lc collector.Config) (*listener, error) {
	name := lc.Name
	if name == "" {
		name = lc.Address
	}
	l := &listener{cfg: lc, decs: protocolDecoders(decoderSettings{cfg: s.cfg, budget: s.budget,
		onSkew: logSkew(s.log, name, s.cfg.ExporterClock.Corrects())})}
	for _, n := range l.decs {
		switch dec := n.udpDecoder.(type) {
		case netflowDecoder:
			l.netflow = dec.Decoder
		case sflowDecoder:
			l.sflow = dec.Decoder
		}
	}
	cl, err := collector.Listen(lc, collectorDecoders(l.decs))
	if err != nil {
		return nil, err
	}
	l.Listener = cl
	return l, nil
}

// run runs a bound listener on its own goroutine. Called with mu held.
func (s *listenerSet) run(l *listener) {
	ctx, cancel := context.WithCancel(s.ctx)
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		granted, asked := l.ReadBuffer()
		s.log.Info("listening", "name", l.Name(), "address", l.Addr().String(), "read_buffer", granted)
		if granted > 0 && granted < asked {
			s.log.Warn("receive buffer smaller than read_buffer: raise net.core.rmem_max or run with CAP_NET_ADMIN",
				"name", l.Name(), "read_buffer", asked, "granted", granted)
		}
		if err := l.RunSink(ctx, s.sink); err != nil && !errors.Is(err, context.Canceled) {
			s.failed(fmt.Errorf("listener %s: %w", l.Name(), err))
		}
	}()
}

// list returns the listeners in service.
func (s *listenerSet) list() []*listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*listener(nil), s.ls...)
}

// running returns how many listeners run and how many the config in
// service asks for.
func (s *listenerSet) running() (running, want int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.ls {
		if l.done == nil {
			continue
		}
		select {
		case <-l.done:
		default:
			running++
		}
	}
	return running, len(s.cfg.Listen)
}

// needsReconfigure tells whether a config changes the listeners or what
// their decoders are built from (then every one is rebound: fresh).
func (s *listenerSet) needsReconfigure(to *config.Config) (needed, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh = !reflect.DeepEqual(to.Sampling, s.cfg.Sampling) || !reflect.DeepEqual(to.ExporterClock, s.cfg.ExporterClock)
	return fresh || !reflect.DeepEqual(to.Listen, s.cfg.Listen), fresh
}

// reconfigure brings the listeners to a new configuration: unchanged ones
// keep running (and their templates), changed ones are stopped and bound
// again, removed ones stopped, new ones started. With fresh every listener
// is rebound with decoders built from to. A listener that cannot bind is
// logged, left out and counted in the result.
func (s *listenerSet) reconfigure(to *config.Config, fresh bool) (failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := to.Listen
	s.cfg.Sampling, s.cfg.ExporterClock = to.Sampling, to.ExporterClock // what bind builds decoders from
	old := map[string]*listener{}
	for _, l := range s.ls {
		old[l.cfg.Name] = l
	}
	var keep []*listener
	for _, lc := range want {
		if l, ok := old[lc.Name]; ok && !fresh && reflect.DeepEqual(l.cfg, lc) {
			keep = append(keep, l)
			delete(old, lc.Name)
		}
	}
	for _, l := range old { // changed or removed: stop before rebinding
		l.cancel()
		<-l.done
		for _, n := range l.decs {
			n.release() // its templates no longer count in the shared budget
		}
		s.log.Info("listener stopped by reload", "name", l.cfg.Name)
	}
	next := keep
	for _, lc := range want {
		if slices.ContainsFunc(keep, func(l *listener) bool { return l.cfg.Name == lc.Name }) {
			continue
		}
		l, err := s.bind(lc)
		if err != nil {
			failed++
			s.log.Error("reload: listener not started", "name", lc.Name, "err", err)
			continue
		}
		s.run(l)
		next = append(next, l)
	}
	s.ls = next
	s.cfg.Listen = want
	return failed
}
