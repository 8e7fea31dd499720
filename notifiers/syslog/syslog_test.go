package syslog

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
)

// tricky holds every character the formats must escape.
func tricky() *alert.Alert {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 250000000, time.UTC)
	return &alert.Alert{
		ID: "5f1c0ffee", Rule: "exfil-dns", Name: `Exfil | over "DNS" \ ]`,
		Severity: "critical", Tags: []string{"T1048", "exfil"},
		Group: map[string]any{"src_addr": "10.0.0.5", "dst_addr": "203.0.113.9", "dst_port": 53, "proto_name": "udp",
			"note": `a]b"c\d=e|f`},
		Value: 1.5e9, Threshold: 5e8, Window: "10m0s",
		FirstSeen: t0.Add(-time.Minute), LastSeen: t0, FiredAt: t0,
		Message:    "line one\nline two = 3 | a\\b ]\"quoted\" é",
		Enrichment: map[string]map[string]any{"dst_addr": {"country": "NL", "asn": 64500}},
	}
}

// sd5424 is a parsed RFC 5424 message.
type sd5424 struct {
	pri                               int
	ts, host, app, procID, msgID, msg string
	sd                                map[string]map[string]string
}

// parse5424 is a small RFC 5424 parser, written from the RFC's ABNF.
func parse5424(t *testing.T, s string) sd5424 {
	t.Helper()
	var m sd5424
	if !strings.HasPrefix(s, "<") {
		t.Fatalf("no PRI in %q", s)
	}
	end := strings.IndexByte(s, '>')
	m.pri, _ = strconv.Atoi(s[1:end])
	s = s[end+1:]
	if !strings.HasPrefix(s, "1 ") {
		t.Fatalf("version is not 1: %q", s)
	}
	f := strings.SplitN(s[2:], " ", 6)
	if len(f) != 6 {
		t.Fatalf("short header: %q", s)
	}
	m.ts, m.host, m.app, m.procID, m.msgID = f[0], f[1], f[2], f[3], f[4]
	rest := f[5]
	m.sd = map[string]map[string]string{}
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	}
	for strings.HasPrefix(rest, "[") {
		i := 1
		for rest[i] != ' ' && rest[i] != ']' {
			i++
		}
		id := rest[1:i]
		params := map[string]string{}
		m.sd[id] = params
		for rest[i] == ' ' {
			i++
			eq := strings.IndexByte(rest[i:], '=')
			name := rest[i : i+eq]
			i += eq + 1
			if rest[i] != '"' {
				t.Fatalf("param %s: no opening quote", name)
			}
			i++
			var v strings.Builder
			for rest[i] != '"' {
				if rest[i] == '\\' && (rest[i+1] == '"' || rest[i+1] == '\\' || rest[i+1] == ']') {
					i++
				} else if rest[i] == ']' {
					t.Fatalf("param %s: unescaped ]", name)
				}
				v.WriteByte(rest[i])
				i++
			}
			i++
			params[name] = v.String()
		}
		if rest[i] != ']' {
			t.Fatalf("SD element %s not closed at %q", id, rest[i:])
		}
		rest = rest[i+1:]
	}
	m.msg = strings.TrimPrefix(rest, " ")
	return m
}

// parseCEF splits a CEF event into its header fields and extension,
// undoing the escapes; written from the ArcSight CEF specification.
func parseCEF(t *testing.T, s string) ([]string, map[string]string) {
	t.Helper()
	i := strings.Index(s, "CEF:")
	if i < 0 {
		t.Fatalf("no CEF in %q", s)
	}
	s = s[i:]
	var hdr []string
	var cur strings.Builder
	j := 0
	for ; j < len(s) && len(hdr) < 7; j++ {
		switch s[j] {
		case '\\':
			j++
			cur.WriteByte(s[j])
		case '|':
			hdr = append(hdr, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[j])
		}
	}
	ext := s[j:]
	// Keys start after a space (or at the start) and end at an unescaped '='.
	type kv struct {
		k          string
		start, end int
	}
	var keys []kv
	for p := 0; p < len(ext); p++ {
		if ext[p] == '\\' {
			p++
			continue
		}
		if ext[p] == '=' {
			ks := strings.LastIndexByte(ext[:p], ' ') + 1
			keys = append(keys, kv{k: ext[ks:p], start: ks, end: p + 1})
		}
	}
	out := map[string]string{}
	for n, k := range keys {
		stop := len(ext)
		if n+1 < len(keys) {
			stop = keys[n+1].start - 1
		}
		raw := ext[k.end:stop]
		var v strings.Builder
		for p := 0; p < len(raw); p++ {
			if raw[p] == '\\' && p+1 < len(raw) {
				p++
				switch raw[p] {
				case 'n':
					v.WriteByte('\n')
				case 'r':
					v.WriteByte('\r')
				default:
					v.WriteByte(raw[p])
				}
				continue
			}
			v.WriteByte(raw[p])
		}
		out[k.k] = v.String()
	}
	return hdr, out
}

// streamListener accepts syslog over TCP (or TLS) and decodes frames.
type streamListener struct {
	net.Listener
	msgs  chan string
	conns chan net.Conn
}

func listenStream(t *testing.T, tlsCfg *tls.Config, framing string) *streamListener {
	t.Helper()
	var l net.Listener
	var err error
	if tlsCfg != nil {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	sl := &streamListener{Listener: l, msgs: make(chan string, 100), conns: make(chan net.Conn, 10)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			sl.conns <- c
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if framing == FramingNonTransparent {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						sl.msgs <- strings.TrimSuffix(line, "\n")
						continue
					}
					lenStr, err := r.ReadString(' ')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSpace(lenStr))
					if err != nil {
						sl.msgs <- "BAD FRAME " + lenStr
						return
					}
					buf := make([]byte, n)
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					sl.msgs <- string(buf)
				}
			}()
		}
	}()
	return sl
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	return ""
}

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	base := DefaultConfig()
	base.Hostname = "fg-test"
	if cfg.Network != "" {
		base.Network = cfg.Network
	}
	if cfg.Format != "" {
		base.Format = cfg.Format
	}
	if cfg.Framing != "" {
		base.Framing = cfg.Framing
	}
	base.Address, base.TLS = cfg.Address, cfg.TLS
	if cfg.Timeout != 0 {
		base.Timeout = cfg.Timeout
	}
	n, err := New("siem", base, "1.0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func check5424(t *testing.T, raw string) {
	t.Helper()
	a := tricky()
	m := parse5424(t, raw)
	if m.pri != 20*8+2 || m.ts != "2024-05-01T12:00:00.25Z" || m.host != "fg-test" || m.app != "flowguard" ||
		m.procID != strconv.Itoa(os.Getpid()) || m.msgID != "exfil-dns" {
		t.Errorf("header %+v", m)
	}
	fg := m.sd["flowguard@32473"]
	for k, want := range map[string]string{
		"id": a.ID, "rule": a.Rule, "name": a.Name, "severity": "critical", "tags": "T1048,exfil",
		"value": "1500000000", "threshold": "500000000", "window": "10m0s", "message": a.Message,
		"fired_at": "2024-05-01T12:00:00Z", "first_seen": "2024-05-01T11:59:00Z", "last_seen": "2024-05-01T12:00:00Z",
	} {
		if fg[k] != want {
			t.Errorf("flowguard@32473 %s = %q, want %q", k, fg[k], want)
		}
	}
	g := m.sd["flowguardGroup@32473"]
	for k, v := range a.Group {
		if g[k] != fmt.Sprint(v) {
			t.Errorf("group %s = %q, want %v", k, g[k], v)
		}
	}
	if e := m.sd["flowguardEnrich@32473"]; e["dst_addr.country"] != "NL" || e["dst_addr.asn"] != "64500" {
		t.Errorf("enrichment %v", e)
	}
	if strings.ContainsAny(m.msg, "\n") || !strings.Contains(m.msg, "[CRITICAL] exfil-dns") {
		t.Errorf("MSG %q", m.msg)
	}
}

func TestRFC5424OverUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	n := newNotifier(t, Config{Network: NetworkUDP, Address: pc.LocalAddr().String()})
	if err := n.Notify(context.Background(), tricky()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	check5424(t, string(buf[:k]))
}

func TestRFC5424OverTCPOctetCounting(t *testing.T) {
	l := listenStream(t, nil, FramingOctetCounting)
	n := newNotifier(t, Config{Network: NetworkTCP, Address: l.Addr().String()})
	for range 3 {
		if err := n.Notify(context.Background(), tricky()); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		check5424(t, recv(t, l.msgs))
	}
}

func TestNonTransparentFraming(t *testing.T) {
	l := listenStream(t, nil, FramingNonTransparent)
	n := newNotifier(t, Config{Network: NetworkTCP, Framing: FramingNonTransparent, Format: FormatCEF, Address: l.Addr().String()})
	n.Notify(context.Background(), tricky(), tricky())
	for range 2 {
		hdr, ext := parseCEF(t, recv(t, l.msgs))
		if hdr[4] != "exfil-dns" || ext["msg"] != tricky().Message {
			t.Fatalf("hdr %q ext %q", hdr, ext)
		}
	}
}

func TestCEFRoundTrip(t *testing.T) {
	l := listenStream(t, nil, FramingOctetCounting)
	n := newNotifier(t, Config{Network: NetworkTCP, Format: FormatCEF, Address: l.Addr().String()})
	a := tricky()
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	raw := recv(t, l.msgs)
	if !strings.HasPrefix(raw, "<162>May  1 12:00:00 fg-test CEF:0|") || strings.ContainsAny(raw, "\n\r") {
		t.Fatalf("raw %q", raw)
	}
	hdr, ext := parseCEF(t, raw)
	wantHdr := []string{"CEF:0", "flowguard", "flowguard", "1.0", "exfil-dns", a.Name, "10"}
	if strings.Join(hdr, "\x00") != strings.Join(wantHdr, "\x00") {
		t.Errorf("header %q, want %q", hdr, wantHdr)
	}
	for k, want := range map[string]string{
		"rt": "1714564800250", "start": "1714564740250", "end": "1714564800250",
		"src": "10.0.0.5", "dst": "203.0.113.9", "dpt": "53", "proto": "UDP", "cnt": "1500000000",
		"externalId": a.ID, "msg": a.Message, "cfp1Label": "value", "cfp1": "1500000000", "cfp2": "500000000",
		"cs1Label": "rule", "cs1": "exfil-dns", "cs2": "T1048,exfil", "cs3Label": "group", "cs3": a.GroupString(),
		"cs4": "10m0s", "cs5": `{"dst_addr":{"asn":64500,"country":"NL"}}`, "cs6": "critical",
	} {
		if ext[k] != want {
			t.Errorf("extension %s = %q, want %q", k, ext[k], want)
		}
	}
	if _, ok := ext["spt"]; ok {
		t.Error("spt set without a source port")
	}
}

func TestRFC3164(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	n := newNotifier(t, Config{Format: FormatRFC3164, Address: pc.LocalAddr().String()})
	n.Notify(context.Background(), tricky())
	buf := make([]byte, 4096)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, _, _ := pc.ReadFrom(buf)
	got := string(buf[:k])
	want := fmt.Sprintf("<162>May  1 12:00:00 fg-test flowguard[%d]: 2024-05-01T12:00:00Z [CRITICAL] exfil-dns (T1048,exfil) ", os.Getpid())
	if !strings.HasPrefix(got, want) || strings.Contains(got, "\n") {
		t.Fatalf("got  %q\nwant %q...", got, want)
	}
}

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// returns the server config and the PEM path.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"syslog.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, p
}

func TestTLS(t *testing.T) {
	srvCfg, caFile := selfSigned(t)
	l := listenStream(t, srvCfg, FramingOctetCounting)
	n := newNotifier(t, Config{Network: NetworkTLS, Address: l.Addr().String(), TLS: notifiers.TLSConfig{CAFile: caFile}})
	if err := n.Notify(context.Background(), tricky()); err != nil {
		t.Fatal(err)
	}
	check5424(t, recv(t, l.msgs))

	// Without the CA the handshake fails; insecure_skip_verify accepts it.
	bad := newNotifier(t, Config{Network: NetworkTLS, Address: l.Addr().String()})
	if err := bad.Notify(context.Background(), tricky()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	ins := newNotifier(t, Config{Network: NetworkTLS, Address: l.Addr().String(), TLS: notifiers.TLSConfig{InsecureSkipVerify: true}})
	if err := ins.Notify(context.Background(), tricky()); err != nil {
		t.Fatal(err)
	}
	check5424(t, recv(t, l.msgs))
}

// The receiver closes the stream (a restart, an idle timeout); the next
// alert goes over a new connection instead of into the dead socket.
func TestReconnect(t *testing.T) {
	for _, network := range []string{NetworkTCP, NetworkTLS} {
		t.Run(network, func(t *testing.T) {
			var srvCfg *tls.Config
			var tc notifiers.TLSConfig
			if network == NetworkTLS {
				srvCfg, tc.CAFile = selfSigned(t)
			}
			l := listenStream(t, srvCfg, FramingOctetCounting)
			n := newNotifier(t, Config{Network: network, Address: l.Addr().String(), TLS: tc})
			for i := range 3 {
				a := tricky()
				a.ID = fmt.Sprint("id-", i)
				if err := n.Notify(context.Background(), a); err != nil {
					t.Fatal(err)
				}
				if got := parse5424(t, recv(t, l.msgs)).sd["flowguard@32473"]["id"]; got != a.ID {
					t.Fatalf("got %s, want %s", got, a.ID)
				}
				(<-l.conns).Close()
				time.Sleep(50 * time.Millisecond) // let the FIN arrive
			}
		})
	}
}

// A receiver that is down is a retryable error; the dispatcher delivers
// once it is back.
func TestReceiverDownThenUp(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	n := newNotifier(t, Config{Network: NetworkTCP, Address: addr})
	err := n.Notify(context.Background(), tricky())
	var op *net.OpError
	if !errors.As(err, &op) || notifiers.IsPermanent(err) {
		t.Fatalf("down receiver: %v", err)
	}
	d, _ := notifiers.New([]notifiers.Target{{Notifier: n, Delivery: notifiers.Delivery{
		Retry: notifiers.Retry{Initial: notifiers.Duration(10 * time.Millisecond), Max: notifiers.Duration(50 * time.Millisecond)}}}},
		nil, notifiers.Deps{Logger: slog.New(slog.DiscardHandler)})
	d.Send(tricky())
	time.Sleep(100 * time.Millisecond)
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skip("port taken meanwhile:", err)
	}
	sl := &streamListener{Listener: l2}
	_ = sl
	c, err := l2.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	lenStr, _ := r.ReadString(' ')
	k, _ := strconv.Atoi(strings.TrimSpace(lenStr))
	buf := make([]byte, k)
	io.ReadFull(r, buf)
	check5424(t, string(buf))
	d.Close(context.Background())
	c.Close()
	l2.Close()
	if s := d.Stats()[0]; s.Sent != 1 || s.Retried == 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A TCP receiver that accepts and never reads: its notifier's writes
// time out, its queue fills and drops are counted, while Send stays fast
// and another notifier keeps delivering.
func TestHungTCPReceiver(t *testing.T) {
	hung, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hung.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	good := listenStream(t, nil, FramingOctetCounting)
	go func() { // drain in the background and count
		for range good.msgs {
		}
	}()
	hn := newNotifier(t, Config{Network: NetworkTCP, Address: hung.Addr().String(), Timeout: notifiers.Duration(200 * time.Millisecond)})
	gn := newNotifier(t, Config{Network: NetworkTCP, Address: good.Addr().String()})
	gn.name = "good"
	quiet := notifiers.Deps{Logger: slog.New(slog.DiscardHandler)}
	d, err := notifiers.New([]notifiers.Target{
		{Notifier: hn, Delivery: notifiers.Delivery{QueueSize: 50, Timeout: notifiers.Duration(200 * time.Millisecond)}},
		{Notifier: gn, Delivery: notifiers.Delivery{QueueSize: 100000}},
	}, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	a := tricky()
	a.Message = strings.Repeat("x", 8000) // fill the socket buffers sooner
	const total = 6000
	var spent, slowest time.Duration
	for i := range total {
		start := time.Now()
		d.Send(a)
		el := time.Since(start)
		spent += el
		slowest = max(slowest, el)
		if i%25 == 24 {
			time.Sleep(time.Millisecond) // let the workers run: the hung socket's buffers fill
		}
	}
	if spent > 2*time.Second {
		t.Fatalf("%d Sends took %v, the slowest %v", total, spent, slowest)
	}
	t.Logf("%d Sends took %v, the slowest %v", total, spent, slowest)
	deadline := time.Now().Add(20 * time.Second)
	for d.Stats()[1].Sent < total && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s := d.Stats()
	if s[1].Sent != total || s[1].Dropped != 0 {
		t.Fatalf("good receiver: %+v", s[1])
	}
	if s[0].Dropped == 0 || s[0].Sent >= total || s[0].Retried == 0 {
		t.Fatalf("hung receiver: %+v", s[0])
	}
	t.Logf("hung receiver: sent %d into socket buffers (a new connection after each write timeout), dropped %d, retried %d",
		s[0].Sent, s[0].Dropped, s[0].Retried)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	d.Close(ctx)
}

func TestConfigErrors(t *testing.T) {
	_, err := New("x", Config{Network: "sctp", Format: "json", Framing: "lines", Facility: "local9"}, "")
	for _, want := range []string{
		`network: "sctp" is not one of udp, tcp, tls`, `format: "json" is not one of rfc5424, rfc3164, cef`,
		`framing: "lines"`, `facility: "local9"`, "address: must be set", "timeout: must be > 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not hold %s", err, want)
		}
	}
	c := DefaultConfig()
	c.Address = "siem.example"
	c.Network = NetworkTLS
	got, _, err := c.resolve()
	if err != nil || got.Address != "siem.example:6514" {
		t.Fatalf("default port: %q %v", got.Address, err)
	}
}

func BenchmarkFormat5424(b *testing.B) {
	n, _ := New("b", Config{Network: NetworkUDP, Address: "127.0.0.1:514", Format: FormatRFC5424, Facility: "local4",
		Framing: FramingOctetCounting, Timeout: notifiers.Duration(time.Second), Enterprise: 32473, AppName: "flowguard"}, "")
	a := tricky()
	b.ReportAllocs()
	for b.Loop() {
		n.Format(a)
	}
}
