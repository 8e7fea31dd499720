// Package syslog sends alerts to a syslog receiver or SIEM: as RFC 5424
// messages with the alert as structured data, as RFC 3164 lines, or as
// ArcSight CEF events, over UDP, TCP (RFC 6587 framing) or TLS. A broken
// stream connection is dropped and made again on the next attempt.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

func init() {
	notifiers.Register("syslog", func(name string, settings *yaml.Node, deps notifiers.Deps) (notifiers.Notifier, error) {
		cfg := DefaultConfig()
		if err := notifiers.Decode(settings, &cfg); err != nil {
			return nil, err
		}
		return New(name, cfg, deps.Version)
	})
}

// Notifier writes alerts to one syslog receiver.
type Notifier struct {
	name string
	cfg  Config
	f    formatter
	tls  *tls.Config

	mu   sync.Mutex
	conn net.Conn // nil until the first alert and after a failure
	raw  net.Conn // the TCP connection under conn, for the liveness check
	buf  []byte
}

// New returns a syslog notifier; version goes into CEF headers. It
// connects on the first alert.
func New(name string, cfg Config, version string) (*Notifier, error) {
	cfg, fac, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	n := &Notifier{name: name, cfg: cfg, f: formatter{
		facility: fac, hostname: cfg.Hostname, appName: cfg.AppName,
		procID: strconv.Itoa(os.Getpid()), enterprise: cfg.Enterprise, version: version,
	}}
	if cfg.Network == NetworkTLS {
		if n.tls, err = cfg.TLS.Build(); err != nil {
			return nil, err
		}
		if n.tls.ServerName == "" {
			n.tls.ServerName, _, _ = net.SplitHostPort(cfg.Address)
		}
	}
	return n, nil
}

// Name returns the notifier's name.
func (n *Notifier) Name() string { return n.name }

// Format renders a as the configured message, without framing.
func (n *Notifier) Format(a *alert.Alert) []byte {
	switch n.cfg.Format {
	case FormatRFC3164:
		return n.f.rfc3164(a)
	case FormatCEF:
		return n.f.cef(a)
	}
	return n.f.rfc5424(a)
}

// Notify sends each alert as one message (one datagram over UDP). On a
// write error the connection is closed, so the retry connects afresh.
func (n *Notifier) Notify(ctx context.Context, alerts ...*alert.Alert) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range alerts {
		if err := n.send(ctx, n.Format(a)); err != nil {
			n.drop()
			return fmt.Errorf("syslog %s: %s %s: %w", n.name, n.cfg.Network, n.cfg.Address, err)
		}
	}
	return nil
}

func (n *Notifier) send(ctx context.Context, msg []byte) error {
	if n.conn != nil && n.raw != nil && !alive(n.raw) {
		n.drop() // the receiver closed the stream; writing would lose this message
	}
	if n.conn == nil {
		if err := n.dial(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(n.cfg.Timeout.D())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn := n.conn
	conn.SetWriteDeadline(deadline)
	// Cancelling ctx (Close running out of time) unblocks a write to a
	// receiver that stopped reading. The func holds this connection, not
	// n.conn: it may run after a failed write has dropped n.conn.
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	b := n.buf[:0]
	switch {
	case n.cfg.Network == NetworkUDP:
		b = append(b, msg...)
	case n.cfg.Framing == FramingNonTransparent:
		b = append(b, oneLine(string(msg))...)
		b = append(b, '\n')
	default:
		b = strconv.AppendInt(b, int64(len(msg)), 10)
		b = append(b, ' ')
		b = append(b, msg...)
	}
	n.buf = b
	_, err := conn.Write(b)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (n *Notifier) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: n.cfg.Timeout.D(), KeepAlive: 30 * time.Second}
	network := n.cfg.Network
	if network == NetworkTLS {
		network = "tcp"
	}
	c, err := d.DialContext(ctx, network, n.cfg.Address)
	if err != nil {
		return err
	}
	if n.cfg.Network == NetworkUDP {
		n.conn = c
		return nil
	}
	n.raw, n.conn = c, c
	if n.cfg.Network == NetworkTLS {
		tc := tls.Client(c, n.tls)
		hctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout.D())
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			c.Close()
			n.raw, n.conn = nil, nil
			return err
		}
		n.conn = tc
	}
	return nil
}

func (n *Notifier) drop() {
	if n.conn != nil {
		n.conn.Close()
	}
	n.conn, n.raw = nil, nil
}

// Close closes the connection.
func (n *Notifier) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil
	}
	err := n.conn.Close()
	n.conn, n.raw = nil, nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
