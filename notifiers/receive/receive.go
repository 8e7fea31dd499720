// Package receive is the far end of the syslog and webhook notifiers, for
// trying flowguard out and for checking what a deployment sends: a syslog
// listener (UDP, and TCP with RFC 6587 octet-counting or newline framing)
// and a webhook receiver (HTTP POST, answered 200) that print each message
// that arrives as one line. `flowguard receive syslog|webhook` runs them.
//
// Both are bounded: a message is at most MaxMessageBytes (longer syslog
// frames end the connection, longer webhook bodies are answered 413),
// TCP connections at most MaxConns at once, each idle at most IdleTimeout.
package receive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits.
const (
	MaxMessageBytes = 64 << 10 // a syslog message or a webhook body
	MaxConns        = 64       // TCP connections (syslog) or HTTP connections (webhook) at once
	IdleTimeout     = 5 * time.Minute
)

// Printer writes one line per message to w; it is safe for concurrent use.
type Printer struct {
	mu sync.Mutex
	w  io.Writer
	n  atomic.Uint64
}

// NewPrinter returns a Printer writing to w.
func NewPrinter(w io.Writer) *Printer { return &Printer{w: w} }

// Count is how many messages were printed.
func (p *Printer) Count() uint64 { return p.n.Load() }

// print writes "kind from: message" with line breaks in message shown as
// spaces, so one message is one line.
func (p *Printer) print(kind, from string, msg []byte) {
	msg = bytes.TrimRight(msg, "\r\n\x00")
	line := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(string(msg))
	p.mu.Lock()
	fmt.Fprintf(p.w, "%s %s: %s\n", kind, from, line)
	p.mu.Unlock()
	p.n.Add(1)
}

// Syslog receives syslog messages on one address, over UDP and TCP.
type Syslog struct {
	udp   net.PacketConn
	tcp   net.Listener
	out   *Printer
	slots chan struct{}
	wg    sync.WaitGroup
}

// ListenSyslog binds UDP and TCP on addr (host:port; port 0 picks one
// for UDP and uses the same number for TCP when free).
func ListenSyslog(addr string, out *Printer) (*Syslog, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &Syslog{udp: pc, tcp: ln, out: out, slots: make(chan struct{}, MaxConns)}, nil
}

// Addr is the address bound (the same port for UDP and TCP).
func (s *Syslog) Addr() string { return s.udp.LocalAddr().String() }

// Serve receives until ctx ends, then closes the sockets and waits for
// the connections to finish.
func (s *Syslog) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.udp.Close(); s.tcp.Close() })
	defer stop()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, MaxMessageBytes)
		for {
			n, from, err := s.udp.ReadFrom(buf)
			if err != nil {
				return
			}
			s.out.print("syslog udp", from.String(), buf[:n])
		}
	}()
	var err error
	for {
		var c net.Conn
		c, err = s.tcp.Accept()
		if err != nil {
			break
		}
		select {
		case s.slots <- struct{}{}:
		default:
			c.Close() // over MaxConns
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			s.serveConn(ctx, c)
		}()
	}
	s.udp.Close()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// serveConn reads RFC 6587 frames: "LEN SP MSG" (octet counting) when a
// frame starts with a digit, else a line (non-transparent framing).
func (s *Syslog) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	from := c.RemoteAddr().String()
	r := bufio.NewReaderSize(c, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(IdleTimeout))
		msg, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				s.out.print("syslog tcp", from, []byte("(connection dropped: "+err.Error()+")"))
			}
			return
		}
		if len(msg) > 0 {
			s.out.print("syslog tcp", from, msg)
		}
	}
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	b, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	if b[0] >= '1' && b[0] <= '9' {
		lenText, err := r.ReadSlice(' ')
		if err != nil {
			return nil, fmt.Errorf("octet count: %w", err)
		}
		n, err := strconv.Atoi(string(lenText[:len(lenText)-1]))
		if err != nil || n > MaxMessageBytes {
			return nil, fmt.Errorf("octet count %q is not a length up to %d", lenText[:len(lenText)-1], MaxMessageBytes)
		}
		msg := make([]byte, n)
		_, err = io.ReadFull(r, msg)
		return msg, err
	}
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > MaxMessageBytes {
			return nil, fmt.Errorf("a line longer than %d bytes", MaxMessageBytes)
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
	}
}

// Webhook receives HTTP POSTs on one address and prints each body (JSON
// compacted to one line) with its path.
type Webhook struct {
	ln  net.Listener
	srv *http.Server
}

// ListenWebhook binds addr (host:port).
func ListenWebhook(addr string, out *Printer) (*Webhook, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "send alerts with POST", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxMessageBytes))
		if err != nil {
			http.Error(w, fmt.Sprintf("body over %d bytes", MaxMessageBytes), http.StatusRequestEntityTooLarge)
			return
		}
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			body = compact.Bytes()
		}
		out.print("webhook "+r.Method+" "+r.URL.Path, r.RemoteAddr, body)
		w.WriteHeader(http.StatusOK)
	})
	limited := &limitListener{Listener: ln, slots: make(chan struct{}, MaxConns)}
	return &Webhook{ln: limited, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: 64 << 10}}, nil
}

// Addr is the address bound.
func (wh *Webhook) Addr() string { return wh.ln.Addr().String() }

// Serve answers until ctx ends.
func (wh *Webhook) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		wh.srv.Shutdown(sctx)
	})
	defer stop()
	err := wh.srv.Serve(wh.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// limitListener holds at most cap(slots) connections open at once;
// Accept waits for one to close.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
}

type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
