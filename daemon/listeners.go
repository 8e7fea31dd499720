package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/flowguard/flowguard/config"
	"github.com/flowguard/flowguard/ingest/collector"
	"github.com/flowguard/flowguard/ingest/netflow"
	"github.com/flowguard/flowguard/ingest/sflow"
	"github.com/flowguard/flowguard/lifecycle"
)

// The listeners: one per listen entry, each with a decoder of every
// registered UDP protocol (sources.go), rebound by reloads that change them.

type listener struct {
	*collector.Listener
	cfg  collector.Config
	decs []namedDecoder // one per registered protocol
	// The built-in protocols' decoders, for their ingest metrics.
	netflow *netflow.Decoder
	sflow   *sflow.Decoder
	cancel  context.CancelFunc
	done    chan struct{}
}

// newListener binds one listener with decoders of its own.
func (d *Daemon) newListener(lc collector.Config) (*listener, error) {
	name := lc.Name
	if name == "" {
		name = lc.Address
	}
	l := &listener{cfg: lc, decs: protocolDecoders(decoderSettings{cfg: d.cfg, budget: d.templateBudget,
		onSkew: logSkew(d.log, name, d.cfg.ExporterClock.Corrects())})}
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

// startListener runs a bound listener on its own goroutine. The caller
// holds d.lmu.
func (d *Daemon) startListener(l *listener) {
	ctx, cancel := context.WithCancel(d.lctx)
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		d.log.Info("listening", "name", l.Name(), "address", l.Addr().String())
		if err := l.Run(ctx, d.handleFlows); err != nil && !errors.Is(err, context.Canceled) {
			d.lerr <- fmt.Errorf("listener %s: %w", l.Name(), err)
		}
	}()
}

// listenerList returns the listeners in service.
func (d *Daemon) listenerList() []*listener {
	d.lmu.Lock()
	defer d.lmu.Unlock()
	return append([]*listener(nil), d.listeners...)
}

// restartListeners brings the listeners to a new configuration: unchanged
// ones keep running (and their templates), changed ones are stopped and
// bound again, removed ones stopped, new ones started. With fresh (the
// sampling or exporter clock settings changed) every listener is rebound
// with decoders built from to. A listener that cannot bind is logged and
// left out.
func (d *Daemon) restartListeners(to *config.Config, fresh bool) {
	d.lmu.Lock()
	defer d.lmu.Unlock()
	want := to.Listen
	d.cfg.Sampling, d.cfg.ExporterClock = to.Sampling, to.ExporterClock // what newListener builds decoders from
	old := map[string]*listener{}
	for _, l := range d.listeners {
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
		d.log.Info("listener stopped by reload", "name", l.cfg.Name)
	}
	next := keep
	for _, lc := range want {
		if slices.ContainsFunc(keep, func(l *listener) bool { return l.cfg.Name == lc.Name }) {
			continue
		}
		l, err := d.newListener(lc)
		if err != nil {
			d.reloadErrs.Add(1)
			d.log.Error("reload: listener not started", "name", lc.Name, "err", err)
			continue
		}
		d.startListener(l)
		next = append(next, l)
	}
	d.listeners = next
	d.cfg.Listen = want
}

// listenersComponent runs the bound listeners, each on a goroutine of its
// own handing its batches to handleFlows; a listener that fails sends its
// error to errc, which stops the daemon. Stop waits for every one.
func (d *Daemon) listenersComponent(errc chan error) lifecycle.Component {
	var lstop context.CancelFunc
	return lifecycle.Funcs{N: "listeners",
		OnStart: func(context.Context) error {
			d.lctx, lstop = context.WithCancel(context.Background())
			d.lerr = errc
			// Under lmu: /healthz (served already) reads each listener's
			// done channel, which startListener sets.
			d.lmu.Lock()
			defer d.lmu.Unlock()
			for _, l := range d.listeners {
				d.startListener(l)
			}
			return nil
		},
		OnStop: func(context.Context) error {
			lstop()
			for _, l := range d.listenerList() {
				<-l.done
			}
			return nil
		}}
}
