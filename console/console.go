// Package console is the operator's web view: the pages (plain HTML, CSS
// and JavaScript embedded in the binary; nothing is fetched from elsewhere),
// the live alert event stream (GET /api/events) and the top talkers
// (GET /api/top). The daemon mounts it behind the web package's checks
// (authentication, TLS, cross-site refusal).
package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/flowguard/flowguard/talkers"
)

//go:embed ui
var assets embed.FS

// MaxTop is the most rows per dimension /api/top returns.
const MaxTop = 100

// Console serves the web view and its live APIs.
type Console struct {
	Hub     *Hub
	Talkers *talkers.Talkers
}

// New returns a console with a hub of DefaultMaxStreams streams and top
// talkers of talkers.DefaultCapacity keys per table.
func New() *Console {
	return &Console{Hub: NewHub(0), Talkers: talkers.New(0, nil)}
}

// EventsPath is the path of the event stream, which holds its connection
// open (the web server does not count it among short API requests).
const EventsPath = "/api/events"

// Register adds the routes to mux: GET / (the page), GET /ui/app.js and
// /ui/style.css, GET /api/top, GET /api/events.
func (c *Console) Register(mux *http.ServeMux) {
	c.RegisterPages(mux)
	mux.Handle("GET "+EventsPath, c.Hub)
}

// RegisterPages adds every route but the event stream (which a server
// mounts as a stream: see web.Server.Streams).
func (c *Console) RegisterPages(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle("/", asset("index.html", "/")) // no method: "GET /" would conflict with "/metrics"
	mux.Handle("GET /ui/app.js", asset("app.js", ""))
	mux.Handle("GET /ui/style.css", asset("style.css", ""))
	mux.Handle("GET /api/top", http.HandlerFunc(c.serveTop))
}

// asset serves one embedded file; only at path when path is set ("/"
// also matches every path the mux has no other route for).
func asset(name, path string) http.Handler {
	ui, _ := fs.Sub(assets, "ui")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path != "" && r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		secure(w)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, ui, name)
	})
}

// secure keeps the pages to their own origin: no script, style or
// connection elsewhere, no framing.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// serveTop: GET /api/top?window=1m|5m|15m&by=bytes|packets&n=10.
func (c *Console) serveTop(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	win := q.Get("window")
	if win == "" {
		win = "5m"
	}
	d, ok := talkers.ParseWindow(win)
	if !ok {
		http.Error(w, "window: one of 1m, 5m, 15m", http.StatusBadRequest)
		return
	}
	by := talkers.ByBytes
	switch q.Get("by") {
	case "", "bytes":
	case "packets":
		by = talkers.ByPackets
	default:
		http.Error(w, "by: bytes or packets", http.StatusBadRequest)
		return
	}
	n := 10
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > MaxTop {
			http.Error(w, "n: a number from 1 to "+strconv.Itoa(MaxTop), http.StatusBadRequest)
			return
		}
		n = v
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(c.Talkers.Top(d, by, n))
}
