package alertmanager

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/flowguard/flowguard/notifiers"
)

// APIPath is where Alertmanager takes alerts (API v2).
const APIPath = "/api/v2/alerts"

// Config configures an alertmanager notifier. URLs, the basic auth
// password and the bearer token may hold ${NAME} references to
// environment variables, expanded when the notifier is built.
type Config struct {
	// URLs are the Alertmanagers of one cluster, each as its base URL
	// (http://am1:9093, or with a route prefix); alerts go to all of them.
	URLs []string `yaml:"urls"`
	// BasicAuth and BearerToken authenticate to the Alertmanagers (or the
	// proxy in front of them); at most one of the two.
	BasicAuth   BasicAuth           `yaml:"basic_auth"`
	BearerToken string              `yaml:"bearer_token"`
	TLS         notifiers.TLSConfig `yaml:"tls"`
	Timeout     notifiers.Duration  `yaml:"timeout"` // per request (default 10s)
	// ResendInterval is how often alerts still active are sent again, so
	// that a restarted Alertmanager or a new cluster peer learns them
	// (default 1m, as Prometheus).
	ResendInterval notifiers.Duration `yaml:"resend_interval"`
	// Hold is added to an alert's window to give its endsAt (default 0).
	Hold notifiers.Duration `yaml:"hold"`
	// ExternalURL is flowguard's web address; generatorURL links to the
	// alert's rule and address in its /api/alerts.
	ExternalURL string `yaml:"external_url"`
	// Labels are added to every alert (as Prometheus's external_labels);
	// the alert's own labels win on a clash.
	Labels map[string]string `yaml:"labels"`
	// MaxBatch and MaxBatchBytes bound one request.
	MaxBatch      int `yaml:"max_batch"`
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxValueBytes bounds each label and annotation value; longer values
	// are cut (on a UTF-8 boundary) and end in "…".
	MaxValueBytes int `yaml:"max_value_bytes"`
	// MaxActive bounds the alerts kept for re-sending and resolving.
	MaxActive int `yaml:"max_active"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Timeout:        notifiers.Duration(10 * time.Second),
		ResendInterval: notifiers.Duration(time.Minute),
		MaxBatch:       256,
		MaxBatchBytes:  1 << 20,
		MaxValueBytes:  2048,
		MaxActive:      10000,
	}
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// resolved is a Config with environment references expanded.
type resolved struct {
	Config
	endpoints []endpoint
	external  *url.URL
	secrets   []string // for the redactor
}

// endpoint is one Alertmanager: where to POST and how errors show it.
type endpoint struct {
	url   string
	shown string // scheme://host, no credentials or path
}

// resolve validates cfg and expands its environment references. Errors
// name the field and never hold an expanded value.
func (cfg Config) resolve() (*resolved, error) {
	var errs []error
	r := &resolved{Config: cfg}
	if len(cfg.URLs) == 0 {
		errs = append(errs, errors.New("urls: must list at least one Alertmanager"))
	}
	for i, raw := range cfg.URLs {
		ep, secrets, err := parseEndpoint(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("urls[%d]: %w", i, err))
			continue
		}
		r.endpoints = append(r.endpoints, ep)
		r.secrets = append(r.secrets, secrets...)
	}
	if cfg.BasicAuth.Username != "" || cfg.BasicAuth.Password != "" {
		if cfg.BasicAuth.Username == "" {
			errs = append(errs, errors.New("basic_auth.username: must be set with a password"))
		}
		p, err := notifiers.ExpandEnv(cfg.BasicAuth.Password)
		if err != nil {
			errs = append(errs, fmt.Errorf("basic_auth.password: %w", err))
		}
		r.BasicAuth.Password = p
		r.secrets = append(r.secrets, p)
	}
	if cfg.BearerToken != "" {
		if cfg.BasicAuth.Username != "" {
			errs = append(errs, errors.New("bearer_token: basic_auth and bearer_token exclude each other"))
		}
		tok, err := notifiers.ExpandEnv(cfg.BearerToken)
		if err != nil {
			errs = append(errs, fmt.Errorf("bearer_token: %w", err))
		}
		r.BearerToken = tok
		r.secrets = append(r.secrets, tok)
	}
	if _, err := cfg.TLS.Build(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be > 0"))
	}
	if cfg.ResendInterval <= 0 {
		errs = append(errs, errors.New("resend_interval: must be > 0"))
	}
	if cfg.ExternalURL != "" {
		u, err := url.Parse(cfg.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("external_url: must be an absolute http:// or https:// URL"))
		} else {
			r.external = u
		}
	}
	for k, v := range cfg.Labels {
		if !labelNameRE.MatchString(k) {
			errs = append(errs, fmt.Errorf("labels: %q: a label name is letters, digits and '_', not starting with a digit", k))
		}
		if v == "" {
			errs = append(errs, fmt.Errorf("labels: %s: empty value", k))
		}
	}
	for _, c := range []struct {
		name string
		v    int
		min  int
	}{{"max_batch", cfg.MaxBatch, 1}, {"max_batch_bytes", cfg.MaxBatchBytes, 4096}, {"max_value_bytes", cfg.MaxValueBytes, 16}, {"max_active", cfg.MaxActive, 1}} {
		if c.v < c.min {
			errs = append(errs, fmt.Errorf("%s: must be >= %d", c.name, c.min))
		}
	}
	if cfg.MaxValueBytes*8 > cfg.MaxBatchBytes && cfg.MaxBatchBytes >= 4096 && cfg.MaxValueBytes >= 16 {
		errs = append(errs, errors.New("max_value_bytes: must be at most max_batch_bytes/8, so that one alert fits a request"))
	}
	return r, errors.Join(errs...)
}

// parseEndpoint expands and checks one Alertmanager URL and appends the
// API path unless the URL already ends in it.
func parseEndpoint(raw string) (endpoint, []string, error) {
	s, err := notifiers.ExpandEnv(raw)
	if err != nil {
		return endpoint{}, nil, err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return endpoint{}, nil, errors.New("must be an absolute http:// or https:// URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, nil, errors.New("takes no query or fragment")
	}
	var secrets []string
	if u.User != nil {
		secrets = append(secrets, u.User.String())
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p, url.QueryEscape(p))
		}
	}
	if s != raw && strings.Trim(u.Path, "/") != "" { // a token from the environment in the path
		secrets = append(secrets, u.EscapedPath(), u.Path)
	}
	if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), APIPath) {
		u.Path = strings.TrimRight(u.Path, "/") + APIPath
	} else {
		u.Path = strings.TrimRight(u.Path, "/")
	}
	return endpoint{url: u.String(), shown: u.Scheme + "://" + u.Host}, secrets, nil
}
