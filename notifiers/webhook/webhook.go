// Package webhook POSTs alerts to HTTP endpoints: as the alert's own
// JSON, as an Alertmanager (version 4) webhook payload, or as a Slack
// incoming-webhook message. Requests can carry custom headers and an
// HMAC-SHA256 signature; secrets come from environment variables and are
// kept out of every error.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

// snippetLen is how much of a failed request's answer its error quotes.
const snippetLen = notifiers.SnippetLen

// Signature headers, set when Config.Secret is.
const (
	HeaderSignature = "X-Flowguard-Signature"
	HeaderTimestamp = "X-Flowguard-Timestamp"
)

func init() {
	notifiers.Register("webhook", func(name string, settings *yaml.Node, deps notifiers.Deps) (notifiers.Notifier, error) {
		cfg := DefaultConfig()
		if err := notifiers.Decode(settings, &cfg); err != nil {
			return nil, err
		}
		return New(name, cfg, deps.Version)
	})
}

// Notifier posts alerts to one URL.
type Notifier struct {
	name    string
	cfg     *resolved
	client  *http.Client
	red     notifiers.Redactor
	shown   string // the URL as errors show it: scheme://host/…
	agent   string
	nowFunc func() time.Time
}

// New returns a webhook notifier; version goes into the User-Agent.
func New(name string, cfg Config, version string) (*Notifier, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	client, err := cfg.TLS.HTTPClient(r.Timeout.D())
	if err != nil {
		return nil, err
	}
	n := &Notifier{
		name:    name,
		cfg:     r,
		client:  client,
		shown:   r.url.Scheme + "://" + r.url.Host,
		agent:   "flowguard/" + version,
		nowFunc: time.Now,
	}
	if version == "" {
		n.agent = "flowguard"
	}
	if r.url.Path != "" && r.url.Path != "/" || r.url.RawQuery != "" {
		n.shown += "/…"
	}
	n.red.Add(r.secrets...)
	return n, nil
}

// Name returns the notifier's name.
func (n *Notifier) Name() string { return n.name }

// Close releases idle connections.
func (n *Notifier) Close() error {
	n.client.CloseIdleConnections()
	return nil
}

// Notify posts the alerts: one request for all of them in the
// Alertmanager format, one request each otherwise. 2xx is success; 408,
// 429 and 5xx answers and network errors are retryable; other answers are
// permanent.
func (n *Notifier) Notify(ctx context.Context, alerts ...*alert.Alert) error {
	if n.cfg.Format == FormatAlertmanager {
		body, err := alertmanagerPayload(n.name, n.cfg.ExternalURL, alerts)
		if err != nil {
			return notifiers.Permanent(err)
		}
		return n.post(ctx, body)
	}
	for _, a := range alerts {
		var body []byte
		var err error
		if n.cfg.Format == FormatSlack {
			body, err = slackPayload(n.cfg.Slack, a)
		} else {
			body, err = a.MarshalJSON()
		}
		if err != nil {
			return notifiers.Permanent(fmt.Errorf("webhook %s: encoding alert %s: %w", n.name, a.ID, err))
		}
		if err := n.post(ctx, body); err != nil {
			return err
		}
	}
	return nil
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	h := make(http.Header, len(n.cfg.Headers)+3)
	h.Set("User-Agent", n.agent)
	for k, v := range n.cfg.Headers {
		h.Set(k, v)
	}
	if n.cfg.Secret != "" {
		ts, sig := Sign([]byte(n.cfg.Secret), n.nowFunc(), body)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
	}
	if err := notifiers.PostJSON(ctx, n.client, n.cfg.URL, h, body, &n.red); err != nil {
		return n.red.Error(fmt.Errorf("webhook %s: POST %s: %w", n.name, n.shown, err))
	}
	return nil
}

// Retryable reports whether an HTTP answer is worth retrying (see
// notifiers.HTTPRetryable).
func Retryable(status int) bool { return notifiers.HTTPRetryable(status) }

// Sign returns the timestamp and signature headers' values for body:
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). Receivers
// recompute it and should reject timestamps far from their clock.
func Sign(secret []byte, now time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(now.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return timestamp, "sha256=" + hex.EncodeToString(m.Sum(nil))
}
