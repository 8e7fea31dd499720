package daemon

import (
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/flow"
)

// Extension points (daemon/README.md): a feature built in a package of
// its own joins the daemon through these, called after New and before
// Run.

type handler struct {
	pattern string
	h       http.Handler
}

// Handle adds a handler to the HTTP API's mux (pattern as
// http.ServeMux takes it, such as "GET /api/top"), served with the
// daemon's own authentication and limits. It does nothing when the
// config turns HTTP off.
func (d *Daemon) Handle(pattern string, h http.Handler) {
	d.handlers = append(d.handlers, handler{pattern, h})
}

// stream is a handler added by HandleStream.
type stream struct {
	path  string
	h     http.Handler
	close func()
}

// HandleStream adds a handler for GET path whose responses stay open
// (server-sent events). A stream holds one of http.limits.max_connections
// for its life but none of max_api_requests, which bound short requests;
// the handler bounds its own streams and sets its own deadlines. closeAll
// is called when the server shuts down, to end the open streams at once
// rather than at the drain deadline.
func (d *Daemon) HandleStream(path string, h http.Handler, closeAll func()) {
	d.streams = append(d.streams, stream{path, h, closeAll})
}

// Collect adds a collector to the registry /metrics serves (the
// extension's own metrics, named flowguard_...).
func (d *Daemon) Collect(c prometheus.Collector) {
	d.collectors = append(d.collectors, c)
}

// ObserveFlows adds a stage that sees every batch of flows the listeners
// decode, before the engine queue. It runs on the listeners' goroutines,
// several at once, and must neither keep nor change the batch (copy what
// it keeps): a per-flow path, it should allocate nothing.
func (d *Daemon) ObserveFlows(fn func(batch []flow.Flow)) {
	d.flowObservers = append(d.flowObservers, fn)
}

// ObserveAlerts adds an observer that sees every alert the engine emits
// (each firing, escalation and resolution, silenced or not) once the
// alert tracker recorded it and handed it to the notifiers, from the
// goroutine processing the batch (the engine's, or a source's when the
// idle engine takes its batch directly; one batch at a time, in order):
// it must not block. The alert is shared with the notifiers and must not
// be changed. Alerts().Observe says which change each is.
func (d *Daemon) ObserveAlerts(fn func(a *alert.Alert)) {
	d.alertObservers = append(d.alertObservers, fn)
}

// flowSink is the listeners' ingest.Sink: they decode straight into the
// engine pipeline's pooled buffers, and each batch goes to the observers,
// then to the engine queue, without a copy.
type flowSink struct{ d *Daemon }

func (s flowSink) Buffer() *[]flow.Flow { return s.d.engine.pipe.Buffer() }

func (s flowSink) Hand(b *[]flow.Flow) {
	for _, o := range s.d.flowObservers {
		o(*b)
	}
	s.d.engine.pipe.HandleOwned(b)
}

// handleFlows hands a source's batch (Kafka's) to the observers, then to
// the engine queue.
func (d *Daemon) handleFlows(batch []flow.Flow) {
	for _, o := range d.flowObservers {
		o(batch)
	}
	d.engine.pipe.Handle(batch)
}

// knownExporterSet returns the exporters /metrics and /api/exporters
// always name, as the config in service gives them.
func (d *Daemon) knownExporterSet() map[netip.Addr]bool {
	return *d.knownExporters.Load()
}
