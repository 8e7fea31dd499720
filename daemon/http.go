package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/lifecycle"
	"github.com/flowguard/flowguard/web"
)

func (d *Daemon) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", d.apiHealth)
	mux.HandleFunc("/readyz", d.apiReady)
	mux.HandleFunc("GET /api/status", d.apiStatus)
	mux.HandleFunc("GET /api/alerts", d.apiAlerts)
	mux.HandleFunc("GET /api/rules", d.apiRules)
	mux.HandleFunc("GET /api/exporters", d.apiExporters)
	for _, h := range d.handlers {
		mux.Handle(h.pattern, h.h)
	}
	return mux
}

// newHTTP builds the HTTP server the http section describes and binds
// its port (nothing is served before Start); "off" builds none.
func (d *Daemon) newHTTP() error {
	if d.cfg.HTTP.Listen == "off" {
		return nil
	}
	srv, err := web.New(d.cfg.HTTP, d.log)
	if err != nil {
		return ConfigError{err}
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	d.web, d.httpLn = srv, ln
	if warn := srv.Insecure(); warn != "" {
		d.log.Warn(warn)
	}
	return nil
}

// httpComponent serves the API on the bound port from Start; Stop lets
// requests in flight finish for up to two seconds of ctx, then cuts them.
func (d *Daemon) httpComponent(failed func(error)) lifecycle.Component {
	served := make(chan struct{})
	return lifecycle.Funcs{N: "http",
		OnStart: func(context.Context) error {
			d.http = d.web.HTTPServer(d.mux())
			go func() {
				defer close(served)
				if err := d.http.Serve(d.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
					failed(fmt.Errorf("http: %w", err))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			sctx, cancel := context.WithTimeout(ctx, HTTPDrainTimeout)
			defer cancel()
			if d.http.Shutdown(sctx) != nil {
				d.http.Close() // the shutdown deadline has passed: requests in flight are cut
			}
			<-served
			return nil
		}}
}

// topGroups asks the engine, between batches, for a rule's highest groups.
func (d *Daemon) topGroups(id string) []engine.GroupValue {
	var out []engine.GroupValue
	d.pipe.Do(func(e *engine.Engine) { out = e.TopGroups(id) })
	if out == nil {
		out = []engine.GroupValue{}
	}
	return out
}
