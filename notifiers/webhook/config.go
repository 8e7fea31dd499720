package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/flowguard/flowguard/notifiers"
)

// Payload formats.
const (
	FormatJSON         = "json"         // the alert's own JSON (alert/README.md)
	FormatAlertmanager = "alertmanager" // Alertmanager webhook, version 4
	FormatSlack        = "slack"        // Slack incoming webhook: text + blocks
)

// Config configures a webhook notifier. URL, header values and Secret
// may hold ${NAME} references to environment variables, expanded when
// the notifier is built; "$$" is a literal "$".
type Config struct {
	URL    string `yaml:"url"`
	Format string `yaml:"format"` // json (default), alertmanager, slack
	// Headers are added to every request (Authorization, X-API-Key, ...).
	Headers map[string]string `yaml:"headers"`
	// Secret, when set, signs every request: X-Flowguard-Timestamp holds
	// the Unix time and X-Flowguard-Signature "sha256=" + hex of
	// HMAC-SHA256(secret, timestamp + "." + body).
	Secret  string              `yaml:"secret"`
	Timeout notifiers.Duration  `yaml:"timeout"` // per request (default 10s)
	TLS     notifiers.TLSConfig `yaml:"tls"`
	// ExternalURL is sent as externalURL in Alertmanager payloads (a link
	// back to flowguard or its dashboard).
	ExternalURL string `yaml:"external_url"`
	Slack       Slack  `yaml:"slack"`
}

// Slack tunes the Slack payload. Empty fields are left out, so the
// webhook's own defaults apply.
type Slack struct {
	Channel   string `yaml:"channel"`
	Username  string `yaml:"username"`
	IconEmoji string `yaml:"icon_emoji"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Format: FormatJSON, Timeout: notifiers.Duration(10 * time.Second)}
}

// resolved is a Config with environment references expanded.
type resolved struct {
	Config
	url     *url.URL
	secrets []string // for the redactor
}

// resolve validates cfg and expands its environment references. Errors
// name the field and never hold an expanded value.
func (cfg Config) resolve() (*resolved, error) {
	var errs []error
	r := &resolved{Config: cfg}
	switch cfg.Format {
	case FormatJSON, FormatAlertmanager, FormatSlack:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not one of json, alertmanager, slack", cfg.Format))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be > 0"))
	}
	if cfg.URL == "" {
		errs = append(errs, errors.New("url: must be set"))
	} else if raw, err := notifiers.ExpandEnv(cfg.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	} else if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("url: must be an absolute http:// or https:// URL"))
	} else {
		r.url = u
		if p, ok := u.User.Password(); ok {
			r.secrets = append(r.secrets, p, url.QueryEscape(p))
		}
		if u.User != nil {
			r.secrets = append(r.secrets, u.User.String())
		}
		// Tokens often live in the path or query (Slack, Teams): hide both.
		if strings.Trim(u.Path, "/") != "" {
			r.secrets = append(r.secrets, u.EscapedPath(), u.Path)
		}
		if u.RawQuery != "" {
			r.secrets = append(r.secrets, u.RawQuery)
		}
		r.URL = raw
	}
	if cfg.Secret != "" {
		s, err := notifiers.ExpandEnv(cfg.Secret)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret: %w", err))
		}
		r.Secret = s
		r.secrets = append(r.secrets, s)
	}
	r.Headers = make(map[string]string, len(cfg.Headers))
	for k, v := range cfg.Headers {
		e, err := notifiers.ExpandEnv(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("headers: %s: %w", k, err))
			continue
		}
		r.Headers[k] = e
		// Every header value is hidden, not only credentials by name or
		// values from the environment: a custom header is often a token.
		r.secrets = append(r.secrets, e)
		if _, tok, ok := strings.Cut(e, " "); ok { // "Bearer <token>"
			r.secrets = append(r.secrets, tok)
		}
	}
	if _, err := cfg.TLS.Build(); err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}
