package web

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// refusal is written to a connection that finds every slot busy.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\nContent-Length: 21\r\n\r\ntoo many connections\n"

// connLimiter holds open connections to a maximum. A connection past it
// takes the place of the one idle longest (waiting for its first request
// or between keep-alive requests), so a crowd of idle clients cannot lock
// out /healthz; when every connection is busy with a request, the new one
// is answered 503 and closed.
type connLimiter struct {
	net.Listener
	max   int
	plain bool // the server speaks HTTP on the raw connection (no TLS): refusals get a 503

	mu    sync.Mutex
	conns map[*trackedConn]struct{}

	drains  chan struct{} // bounds goroutines finishing refused connections
	refused atomic.Uint64
	evicted atomic.Uint64
}

// trackedConn is a connection the limiter counts.
type trackedConn struct {
	net.Conn
	l *connLimiter
	// idleSince is when the connection last went idle (Unix ns), 0 while
	// a request is being served.
	idleSince atomic.Int64
}

func newConnLimiter(ln net.Listener, max int, plain bool) *connLimiter {
	return &connLimiter{Listener: ln, max: max, plain: plain,
		conns: map[*trackedConn]struct{}{}, drains: make(chan struct{}, 64)}
}

// Accept returns the next connection that fits under the maximum.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, l: l}
		tc.idleSince.Store(time.Now().UnixNano())
		l.mu.Lock()
		var victim *trackedConn
		if len(l.conns) >= l.max {
			victim = l.idlestLocked()
			if victim == nil {
				l.mu.Unlock()
				l.refuse(c)
				continue
			}
			delete(l.conns, victim)
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.Conn.Close() // the server sees its read fail and lets it go
		}
		return tc, nil
	}
}

func (l *connLimiter) idlestLocked() *trackedConn {
	var best *trackedConn
	var since int64
	for c := range l.conns {
		if s := c.idleSince.Load(); s != 0 && (best == nil || s < since) {
			best, since = c, s
		}
	}
	return best
}

// refuse answers a connection that finds no room, without blocking Accept.
func (l *connLimiter) refuse(c net.Conn) {
	l.refused.Add(1)
	if !l.plain {
		c.Close()
		return
	}
	select {
	case l.drains <- struct{}{}:
	default: // too many being refused at once: just close
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.drains }()
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		c.Write([]byte(refusal))
		if tc, ok := c.(*net.TCPConn); ok {
			// Half-close and read what the client sent, so the close is
			// not a reset that could discard the answer at the client.
			tc.CloseWrite()
			var buf [1024]byte
			for n := 0; n < 16; n++ {
				if _, err := tc.Read(buf[:]); err != nil {
					break
				}
			}
		}
		c.Close()
	}()
}

// open returns the number of connections held.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

func (l *connLimiter) release(c *trackedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Close releases the connection's slot.
func (c *trackedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// connState is the http.Server's ConnState hook: it tells the limiter
// which connections are idle.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, ok := c.(*trackedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		t.idleSince.Store(0)
	case http.StateIdle:
		t.idleSince.Store(time.Now().UnixNano())
	case http.StateHijacked, http.StateClosed:
		l.release(t)
	}
}
