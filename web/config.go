// Package web serves flowguard's HTTP surface (/metrics, /healthz, /api)
// so that hostile clients cannot hurt the daemon: it listens on loopback
// by default, speaks TLS and checks basic-auth (bcrypt) or bearer-token
// credentials in the manner of Prometheus's web configuration file, bounds
// connections, request time, header and body sizes and concurrent API
// requests, refuses cross-site state-changing requests, and pages API
// lists.
package web

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowguard/flowguard/notifiers"
)

// DefaultListen is the address served when the configuration names none:
// loopback only, so that nothing is exposed until an operator decides to.
const DefaultListen = "127.0.0.1:9310"

// Config is the http section of flowguard.yaml. The TLS and
// authentication keys are those of Prometheus's web configuration file,
// so a block written for an exporter can be copied here.
type Config struct {
	// Listen is host:port (default 127.0.0.1:9310); "off" disables HTTP.
	Listen string `yaml:"listen"`
	// TLS serves HTTPS when set.
	TLS *TLSConfig `yaml:"tls_server_config"`
	// BasicAuthUsers maps user names to bcrypt hashes of their passwords.
	BasicAuthUsers map[string]string `yaml:"basic_auth_users"`
	// BearerTokens are accepted tokens, each "sha256:HEX" (the SHA-256 of
	// the token) or a ${NAME} read from the environment.
	BearerTokens []string `yaml:"bearer_tokens"`
	// OpenPaths are served without credentials when authentication is on
	// (exact paths, such as /healthz). Default none.
	OpenPaths []string `yaml:"open_paths"`
	Timeouts  Timeouts `yaml:"timeouts"`
	Limits    Limits   `yaml:"limits"`
}

// TLSConfig is Prometheus's tls_server_config.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile holds the CAs that sign client certificates.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuthType is one of Go's tls.ClientAuthType names:
	// NoClientCert (default), RequestClientCert, RequireAnyClientCert,
	// VerifyClientCertIfGiven, RequireAndVerifyClientCert.
	ClientAuthType string `yaml:"client_auth_type"`
	// MinVersion is TLS12 (default) or TLS13.
	MinVersion string `yaml:"min_version"`
}

// Timeouts bound how long a client may hold a connection.
type Timeouts struct {
	ReadHeader time.Duration `yaml:"read_header"` // request line and headers (default 5s)
	Read       time.Duration `yaml:"read"`        // whole request (default 15s)
	Write      time.Duration `yaml:"write"`       // from the end of the headers to the end of the response (default 30s)
	Idle       time.Duration `yaml:"idle"`        // keep-alive between requests (default 60s)
}

// Limits bound what clients may make the daemon hold.
type Limits struct {
	// MaxConnections is the number of open connections (default 512).
	// Past it the idlest connection is closed to make room; when every
	// one is busy, the new one is answered 503 and closed.
	MaxConnections int `yaml:"max_connections"`
	// MaxAPIRequests is the number of /api requests served at once
	// (default 2); others wait up to two seconds, then get 503.
	MaxAPIRequests int `yaml:"max_api_requests"`
	// MaxHeaderBytes bounds the request line and headers (default 16384).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body (default 65536).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxPage is the largest limit a list request may ask (default 1000).
	MaxPage int `yaml:"max_page"`
}

// SetDefaults fills what the configuration left out.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	t := &c.Timeouts
	t.ReadHeader = orDefault(t.ReadHeader, 5*time.Second)
	t.Read = orDefault(t.Read, 15*time.Second)
	t.Write = orDefault(t.Write, 30*time.Second)
	t.Idle = orDefault(t.Idle, 60*time.Second)
	l := &c.Limits
	l.MaxConnections = orDefault(l.MaxConnections, 512)
	l.MaxAPIRequests = orDefault(l.MaxAPIRequests, 2)
	l.MaxHeaderBytes = orDefault(l.MaxHeaderBytes, 16<<10)
	l.MaxBodyBytes = orDefault(l.MaxBodyBytes, 64<<10)
	l.MaxPage = orDefault(l.MaxPage, 1000)
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// AuthEnabled tells whether requests must carry credentials.
func (c *Config) AuthEnabled() bool {
	return len(c.BasicAuthUsers) > 0 || len(c.BearerTokens) > 0
}

// Validate reports every mistake of the section, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen != "off" && c.Listen != "" { // "": the default
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("http.listen: %w", err))
		}
	}
	if t := c.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			errs = append(errs, errors.New("http.tls_server_config: cert_file and key_file are both required"))
		}
		if _, err := clientAuthType(t.ClientAuthType); err != nil {
			errs = append(errs, fmt.Errorf("http.tls_server_config.client_auth_type: %w", err))
		}
		if _, err := tlsVersion(t.MinVersion); err != nil {
			errs = append(errs, fmt.Errorf("http.tls_server_config.min_version: %w", err))
		}
	}
	for user, hash := range c.BasicAuthUsers {
		if user == "" || strings.Contains(user, ":") {
			errs = append(errs, fmt.Errorf("http.basic_auth_users: %q: a user name is non-empty and holds no colon", user))
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			errs = append(errs, fmt.Errorf("http.basic_auth_users.%s: not a bcrypt hash (make one with flowguard web hash-password)", user))
		}
	}
	for i, tok := range c.BearerTokens {
		if _, err := tokenDigest(tok); err != nil {
			errs = append(errs, fmt.Errorf("http.bearer_tokens[%d]: %w", i, err))
		}
	}
	for i, p := range c.OpenPaths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("http.open_paths[%d]: %q is not a path starting with /", i, p))
		}
	}
	if c.Timeouts.ReadHeader < 0 || c.Timeouts.Read < 0 || c.Timeouts.Write < 0 || c.Timeouts.Idle < 0 {
		errs = append(errs, errors.New("http.timeouts: durations must be positive"))
	}
	l := c.Limits
	if l.MaxConnections < 0 || l.MaxAPIRequests < 0 || l.MaxHeaderBytes < 0 || l.MaxBodyBytes < 0 || l.MaxPage < 0 {
		errs = append(errs, errors.New("http.limits: limits must be positive (0: the default)"))
	}
	return errors.Join(errs...)
}

func clientAuthType(s string) (tls.ClientAuthType, error) {
	switch s {
	case "", "NoClientCert":
		return tls.NoClientCert, nil
	case "RequestClientCert":
		return tls.RequestClientCert, nil
	case "RequireAnyClientCert":
		return tls.RequireAnyClientCert, nil
	case "VerifyClientCertIfGiven":
		return tls.VerifyClientCertIfGiven, nil
	case "RequireAndVerifyClientCert":
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("%q is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert", s)
}

func tlsVersion(s string) (uint16, error) {
	switch s {
	case "", "TLS12":
		return tls.VersionTLS12, nil
	case "TLS13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not one of TLS12, TLS13", s)
}

// tokenDigest returns the SHA-256 a configured bearer token stands for:
// "sha256:HEX" as written, a ${NAME} as the digest of the variable's value.
func tokenDigest(tok string) ([]byte, error) {
	if h, ok := strings.CutPrefix(tok, "sha256:"); ok {
		d, err := hex.DecodeString(h)
		if err != nil || len(d) != 32 {
			return nil, errors.New("sha256: wants 64 hex digits (make one with flowguard web new-token)")
		}
		return d, nil
	}
	if !strings.HasPrefix(tok, "${") {
		return nil, errors.New("give sha256:HEX or ${NAME}; a literal token does not belong in the configuration")
	}
	v, err := notifiers.ExpandEnv(tok)
	if err != nil {
		return nil, err
	}
	return digest(v), nil
}
