package web

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// apiWait is how long an /api request waits for a turn before a 503.
const apiWait = 2 * time.Second

// Server is the hardened HTTP server: build it with New, bind it with
// Listen, and serve a handler through HTTPServer.
type Server struct {
	cfg  Config
	log  *slog.Logger
	auth *authenticator
	tls  *tls.Config
	ln   *connLimiter
	api  chan struct{} // one token per /api request served
	// streams are /api paths that hold their connection open (server-sent
	// events): they bound themselves and take no /api token.
	streams map[string]bool

	authFailed  *prometheus.CounterVec
	apiRejected atomic.Uint64
	csrfBlocked atomic.Uint64
}

// New checks the configuration (defaults filled in by SetDefaults) and
// loads the TLS files.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, api: make(chan struct{}, cfg.Limits.MaxAPIRequests),
		authFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowguard_http_auth_failures_total",
			Help: "Requests refused for missing or wrong credentials, by reason (missing, basic, bearer, scheme, busy).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"missing", "basic", "bearer", "scheme", "busy"} {
		s.authFailed.WithLabelValues(r)
	}
	if cfg.AuthEnabled() {
		a, err := newAuthenticator(&cfg)
		if err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
		s.auth = a
	}
	if cfg.TLS != nil {
		tc, err := loadTLS(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("http.tls_server_config: %w", err)
		}
		s.tls = tc
	}
	return s, nil
}

func loadTLS(c *TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, err
	}
	auth, _ := clientAuthType(c.ClientAuthType) // validated
	minv, _ := tlsVersion(c.MinVersion)
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: auth, MinVersion: minv,
		NextProtos: []string{"http/1.1"}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file: %s: no PEM certificate", c.ClientCAFile)
		}
		tc.ClientCAs = pool
	} else if auth >= tls.VerifyClientCertIfGiven {
		return nil, errors.New("client_auth_type: verifying client certificates needs client_ca_file")
	}
	return tc, nil
}

// Listen binds the configured address, bounded in connections and
// wrapped in TLS when configured.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	return s.Wrap(ln), nil
}

// Wrap bounds an already bound listener (one Server, one listener).
func (s *Server) Wrap(ln net.Listener) net.Listener {
	s.ln = newConnLimiter(ln, s.cfg.Limits.MaxConnections, s.tls == nil)
	if s.tls != nil {
		return tls.NewListener(s.ln, s.tls)
	}
	return s.ln
}

// Insecure names what an operator should know of the configuration: an
// address beyond loopback served without TLS or without credentials.
func (s *Server) Insecure() string {
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return ""
	}
	var miss []string
	if s.tls == nil {
		miss = append(miss, "TLS")
	}
	if s.auth == nil {
		miss = append(miss, "authentication")
	}
	if len(miss) == 0 {
		return ""
	}
	return "http.listen " + s.cfg.Listen + " is reachable beyond loopback without " + strings.Join(miss, " and ")
}

// HTTPServer returns an http.Server for h with the configured timeouts and
// limits and every check in front of h. Serve it on Listen's listener.
func (s *Server) HTTPServer(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           s.Handler(h),
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		ReadTimeout:       s.cfg.Timeouts.Read,
		WriteTimeout:      s.cfg.Timeouts.Write,
		IdleTimeout:       s.cfg.Timeouts.Idle,
		MaxHeaderBytes:    s.cfg.Limits.MaxHeaderBytes,
		ConnState: func(c net.Conn, st http.ConnState) {
			if s.ln != nil {
				s.ln.connState(c, st)
			}
		},
	}
	if s.log != nil {
		srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug) // TLS handshake noise of scanners
	} else {
		srv.ErrorLog = log.New(discard{}, "", 0)
	}
	return srv
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Handler puts the checks in front of h, in this order: body size,
// authentication, cross-site request refusal, and the /api concurrency
// bound.
func (s *Server) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes)
		}
		if s.auth != nil && !s.auth.open[r.URL.Path] {
			if ok, reason := s.auth.check(r); !ok {
				s.authFailed.WithLabelValues(reason).Inc()
				w.Header().Set("WWW-Authenticate", s.auth.challenge())
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if !sameOrigin(r) {
			s.csrfBlocked.Add(1)
			http.Error(w, "cross-site request refused: send it from the same origin or with an X-Requested-With header", http.StatusForbidden)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") && !s.streams[r.URL.Path] {
			t := time.NewTimer(apiWait)
			select {
			case s.api <- struct{}{}:
				t.Stop()
			case <-t.C:
				s.apiRejected.Add(1)
				w.Header().Set("Retry-After", "1")
				http.Error(w, "too many API requests at once", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
			defer func() { <-s.api }()
		}
		h.ServeHTTP(w, r)
	})
}

// Streams names /api paths whose responses stay open (event streams):
// they are not counted among max_api_requests, which bounds short
// requests; the handler bounds its own streams. Call before serving.
func (s *Server) Streams(paths ...string) {
	if s.streams == nil {
		s.streams = map[string]bool{}
	}
	for _, p := range paths {
		s.streams[p] = true
	}
}

// MaxPage is the largest page a list request may ask for.
func (s *Server) MaxPage() int { return s.cfg.Limits.MaxPage }

var (
	descOpen     = prometheus.NewDesc("flowguard_http_connections_open", "HTTP connections held.", nil, nil)
	descMaxConns = prometheus.NewDesc("flowguard_http_connections_max", "HTTP connections allowed (http.limits.max_connections).", nil, nil)
	descRefused  = prometheus.NewDesc("flowguard_http_connections_refused_total", "HTTP connections refused because every one allowed was busy.", nil, nil)
	descEvicted  = prometheus.NewDesc("flowguard_http_connections_evicted_total", "Idle HTTP connections closed to make room for a new one.", nil, nil)
	descAPIRej   = prometheus.NewDesc("flowguard_http_api_rejected_total", "API requests answered 503 because http.limits.max_api_requests were being served.", nil, nil)
	descCSRF     = prometheus.NewDesc("flowguard_http_cross_site_refused_total", "State-changing requests refused as cross-site.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpen, descMaxConns, descRefused, descEvicted, descAPIRej, descCSRF} {
		ch <- d
	}
	s.authFailed.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	var open int
	var refused, evicted uint64
	if s.ln != nil {
		open, refused, evicted = s.ln.open(), s.ln.refused.Load(), s.ln.evicted.Load()
	}
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(open))
	ch <- prometheus.MustNewConstMetric(descMaxConns, prometheus.GaugeValue, float64(s.cfg.Limits.MaxConnections))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(refused))
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(evicted))
	ch <- prometheus.MustNewConstMetric(descAPIRej, prometheus.CounterValue, float64(s.apiRejected.Load()))
	ch <- prometheus.MustNewConstMetric(descCSRF, prometheus.CounterValue, float64(s.csrfBlocked.Load()))
	s.authFailed.Collect(ch)
}
