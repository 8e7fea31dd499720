package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/web"
)

// mux routes the API: the daemon's handlers, then those added by Handle.
func (d *Daemon) mux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", d.apiHealth)
	mux.HandleFunc("/readyz", d.apiReady)
	mux.HandleFunc("GET /api/status", d.apiStatus)
	d.alertsAPI().Register(mux) // /api/alerts, /api/alerts/{id}, /api/silences
	mux.HandleFunc("GET /api/rules", d.apiRules)
	mux.HandleFunc("GET /api/exporters", d.apiExporters)
	for _, h := range d.handlers {
		mux.Handle(h.pattern, h.h)
	}
	for _, s := range d.streams {
		mux.Handle("GET "+s.path, s.h)
	}
	return mux
}

// apiServer is the HTTP API component: the hardened server (web/) on the
// port New binds, serving the daemon's mux from Start.
type apiServer struct {
	web    *web.Server
	ln     net.Listener
	mux    func() http.Handler // built at Start, after the extensions are added
	failed func(error)         // hears of a server that stops on an error; set before Start
	// onShutdown end the open streams (HandleStream) when Stop begins.
	onShutdown []func()

	srv    *http.Server
	served chan struct{}
}

// newAPIServer builds the server the http section describes and binds its
// port; "off" builds none (nil).
func newAPIServer(cfg web.Config, log *slog.Logger, mux func() http.Handler) (*apiServer, error) {
	if cfg.Listen == "off" {
		return nil, nil
	}
	srv, err := web.New(cfg, log)
	if err != nil {
		return nil, ConfigError{err}
	}
	ln, err := srv.Listen()
	if err != nil {
		return nil, err
	}
	if warn := srv.Insecure(); warn != "" {
		log.Warn(warn)
	}
	return &apiServer{web: srv, ln: ln, mux: mux}, nil
}

// Name names the component.
func (a *apiServer) Name() string { return "http" }

// Start serves the API on a goroutine of its own.
func (a *apiServer) Start(context.Context) error {
	a.srv = a.web.HTTPServer(a.mux())
	for _, fn := range a.onShutdown {
		a.srv.RegisterOnShutdown(fn)
	}
	a.served = make(chan struct{})
	go func() {
		defer close(a.served)
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.failed(fmt.Errorf("http: %w", err))
		}
	}()
	return nil
}

// Stop lets requests in flight finish for up to HTTPDrainTimeout of ctx,
// then cuts them, and waits for the server's goroutine.
func (a *apiServer) Stop(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, HTTPDrainTimeout)
	defer cancel()
	if a.srv.Shutdown(sctx) != nil {
		a.srv.Close() // the shutdown deadline has passed: requests in flight are cut
	}
	<-a.served
	return nil
}

// close releases the port of a server never started.
func (a *apiServer) close() { a.ln.Close() }

// topGroups asks the engine, between batches, for a rule's highest groups.
func (d *Daemon) topGroups(id string) []engine.GroupValue {
	var out []engine.GroupValue
	d.engine.pipe.Do(func(e *engine.Engine) { out = e.TopGroups(id) })
	if out == nil {
		out = []engine.GroupValue{}
	}
	return out
}
