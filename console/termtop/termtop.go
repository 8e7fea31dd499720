// Package termtop draws the daemon's top talkers and firing alerts in a
// terminal, refreshed live, with plain ANSI escapes (no curses library).
// It reads the daemon's HTTP API (GET /api/top, GET /api/alerts).
package termtop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowguard/flowguard/talkers"
)

// Options say which daemon to read and how.
type Options struct {
	URL      string        // the daemon's base URL, e.g. http://127.0.0.1:9310
	Window   string        // 1m, 5m or 15m
	By       string        // bytes or packets
	N        int           // rows per table
	Interval time.Duration // refresh period
	User     string        // basic auth user (password in Password)
	Password string
	Token    string // bearer token
	CAFile   string // CA bundle for an https URL
	Once     bool   // draw once without clearing and return (no terminal needed)
}

// Check tells what is wrong with the options, if anything.
func (o Options) Check() error {
	if _, ok := talkers.ParseWindow(o.Window); !ok {
		return fmt.Errorf("--window: one of 1m, 5m, 15m, not %q", o.Window)
	}
	if o.By != "bytes" && o.By != "packets" {
		return fmt.Errorf("--by: bytes or packets, not %q", o.By)
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url: an http:// or https:// address of the daemon, not %q", o.URL)
	}
	return nil
}

// Run draws until ctx is done or q (or Ctrl-C, Ctrl-D) is read from in.
// Keys: w cycles the window, b switches bytes and packets.
func Run(ctx context.Context, o Options, in io.Reader, out io.Writer) error {
	if o.N <= 0 {
		o.N = 10
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if err := o.Check(); err != nil {
		return err
	}
	u, _ := url.Parse(strings.TrimRight(o.URL, "/"))
	c := &client{base: u.String(), o: o, http: &http.Client{Timeout: 5 * time.Second}}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s: no PEM certificate", o.CAFile)
		}
		c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	if o.Once {
		s := c.fetch(ctx)
		if s.err != nil {
			return s.err
		}
		io.WriteString(out, render(s, o, 100))
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan byte, 8)
	if f, ok := in.(*os.File); ok {
		if restore, err := rawMode(int(f.Fd())); err == nil {
			defer restore()
		}
	}
	go readKeys(in, keys)
	io.WriteString(out, "\x1b[?1049h\x1b[?25l") // alternate screen, no cursor
	defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")

	results := make(chan snapshot, 1)
	fetching := false
	fetch := func() {
		if fetching {
			return
		}
		fetching = true
		go func(o Options) {
			s := c.fetchWith(ctx, o)
			select {
			case results <- s:
			case <-ctx.Done():
			}
		}(c.o)
	}
	fetch()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	var last snapshot
	draw := func() {
		w, _ := termWidth(out)
		io.WriteString(out, "\x1b[H\x1b[2J"+strings.ReplaceAll(render(last, c.o, w), "\n", "\r\n"))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case k, ok := <-keys:
			if !ok {
				return nil // input closed
			}
			switch k {
			case 'q', 'Q', 3, 4:
				return nil
			case 'w':
				c.o.Window = map[string]string{"1m": "5m", "5m": "15m", "15m": "1m"}[c.o.Window]
				fetch()
			case 'b':
				c.o.By = map[string]string{"bytes": "packets", "packets": "bytes"}[c.o.By]
				fetch()
			}
		case <-tick.C:
			fetch()
		case s := <-results:
			fetching = false
			if s.err == nil || last.at.IsZero() {
				last = s
			} else {
				last.err = s.err
			}
			draw()
		}
	}
}

func readKeys(in io.Reader, keys chan<- byte) {
	defer close(keys)
	b := make([]byte, 16)
	for {
		n, err := in.Read(b)
		for _, k := range b[:n] {
			keys <- k
		}
		if err != nil {
			return
		}
	}
}

// rawMode turns off line buffering, echo and signal keys on a terminal
// (Ctrl-C arrives as a key, read like q) and returns what restores it.
func rawMode(fd int) (func(), error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

func termWidth(out io.Writer) (int, bool) {
	if f, ok := out.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 20 {
			return int(ws.Col), true
		}
	}
	return 100, false
}

type client struct {
	base string
	o    Options
	http *http.Client
}

// alertRow is the part of an alert the terminal shows.
type alertRow struct {
	ID        string         `json:"id"`
	Rule      string         `json:"rule"`
	Severity  string         `json:"severity"`
	Status    string         `json:"status"`
	Group     map[string]any `json:"group"`
	Value     float64        `json:"value"`
	Peak      float64        `json:"peak"`
	Threshold float64        `json:"threshold"`
	FiredAt   time.Time      `json:"fired_at"`
	Message   string         `json:"message"`
}

type snapshot struct {
	at     time.Time
	top    talkers.Top
	alerts []alertRow
	err    error
}

func (c *client) fetch(ctx context.Context) snapshot { return c.fetchWith(ctx, c.o) }

func (c *client) fetchWith(ctx context.Context, o Options) snapshot {
	s := snapshot{at: time.Now()}
	q := url.Values{"window": {o.Window}, "by": {o.By}, "n": {strconv.Itoa(o.N)}}
	if s.err = c.get(ctx, "/api/top?"+q.Encode(), &s.top); s.err != nil {
		return s
	}
	var all []alertRow
	if s.err = c.get(ctx, "/api/alerts?state=firing&limit=50", &all); s.err != nil {
		return s
	}
	for _, a := range all {
		if a.Status == "" || a.Status == "firing" {
			s.alerts = append(s.alerts, a)
		}
	}
	return s
}

func (c *client) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	switch {
	case c.o.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	case c.o.User != "":
		req.SetBasicAuth(c.o.User, c.o.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// render lays a snapshot out in width columns.
func render(s snapshot, o Options, width int) string {
	var b strings.Builder
	at := "waiting for the daemon"
	if !s.at.IsZero() {
		at = s.at.Format("15:04:05")
	}
	fmt.Fprintf(&b, "flowguard top  %s  window %s by %s  %s   (q quit, w window, b bytes/packets)\n", o.URL, o.Window, o.By, at)
	if s.err != nil {
		fmt.Fprintf(&b, "error: %s\n", oneLine(s.err))
	}
	fmt.Fprintf(&b, "\nFIRING ALERTS (%d)\n", len(s.alerts))
	sort.Slice(s.alerts, func(i, j int) bool { return s.alerts[i].FiredAt.After(s.alerts[j].FiredAt) })
	for i, a := range s.alerts {
		if i == o.N {
			fmt.Fprintf(&b, "  ... %d more\n", len(s.alerts)-i)
			break
		}
		line := fmt.Sprintf("  %-8s %-22s %-30s %10s / %-10s %s", a.Severity, a.Rule, groupText(a.Group), num(max(a.Peak, a.Value)), num(a.Threshold), a.Message)
		b.WriteString(clip(line, width) + "\n")
	}
	if len(s.alerts) == 0 {
		b.WriteString("  none\n")
	}
	col := max(30, (width-2)/2)
	pair := func(lt string, l []talkers.Row, rt string, r []talkers.Row) {
		b.WriteString("\n" + pad(lt, col) + "  " + rt + "\n")
		for i := range max(len(l), len(r), 1) {
			b.WriteString(pad(rowText(l, i, col, i == 0), col) + "  " + rowText(r, i, col, i == 0) + "\n")
		}
	}
	pair("SOURCES", s.top.Sources, "DESTINATIONS", s.top.Destinations)
	pair("PORTS", s.top.Ports, "AS NUMBERS", s.top.ASNs)
	return b.String()
}

func rowText(rows []talkers.Row, i, width int, first bool) string {
	if i >= len(rows) {
		if first {
			return "  no flows"
		}
		return ""
	}
	r := rows[i]
	return clip(fmt.Sprintf("  %-*s %9s %9s pkts", max(10, width-28), r.Key, bytesText(r.Bytes), num(float64(r.Packets))), width)
}

func groupText(g map[string]any) string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, g[k])
	}
	return strings.Join(parts, " ")
}

func num(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func bytesText(v uint64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f, i := float64(v), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return strconv.FormatUint(v, 10) + "B"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + units[i]
}

func pad(s string, n int) string {
	if r := []rune(s); len(r) < n {
		return s + strings.Repeat(" ", n-len(r))
	}
	return clip(s, n)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

func oneLine(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
