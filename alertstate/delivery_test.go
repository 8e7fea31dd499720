package alertstate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
	_ "github.com/flowguard/flowguard/notifiers/all"
)

// The lifecycle through the real dispatcher to real receivers: a webhook
// server, a syslog listener on a UDP socket (RFC 5424 and CEF) and
// snmptrapd with FLOWGUARD-MIB. A scan fires, escalates and resolves, each
// a notification of the same alert; a silenced scan reaches no receiver
// and is recorded; a later scan arrives after it everywhere, so the
// silenced one was never in a queue.

// lines collects text from a receiver.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (c *lines) add(s string) {
	c.mu.Lock()
	c.l = append(c.l, s)
	c.mu.Unlock()
}

// with returns the lines holding every one of want.
func (c *lines) with(want ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.l {
		all := true
		for _, w := range want {
			all = all && strings.Contains(l, w)
		}
		if all {
			out = append(out, l)
		}
	}
	return out
}

// wait waits until n lines hold every one of want.
func (c *lines) wait(t *testing.T, what string, n int, want ...string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := c.with(want...); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("%s: want %d lines with %q; got:\n%s", what, n, want, strings.Join(c.l, "\n"))
	return nil
}

func udpReceiver(t *testing.T) (string, *lines) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := &lines{}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			c.add(string(buf[:n]))
		}
	}()
	return pc.LocalAddr().String(), c
}

func webhookReceiver(t *testing.T) (string, *lines) {
	c := &lines{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		c.add(b.String())
	}))
	t.Cleanup(srv.Close)
	return srv.URL, c
}

// snmptrapd runs the real snmptrapd with FLOWGUARD-MIB and the IETF
// modules it imports (notifiers/snmptrap/mibs).
func snmptrapd(t *testing.T) (string, *lines) {
	t.Helper()
	if _, err := exec.LookPath("snmptrapd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("snmptrapd not found: apt-get install snmptrapd snmp")
		}
		t.Skip("snmptrapd not found: apt-get install snmptrapd snmp")
	}
	mibs, _ := filepath.Abs("../notifiers/snmptrap/mibs")
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	if err := os.WriteFile(conf, []byte("authCommunity log public\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	cmd := exec.Command("snmptrapd", "-f", "-Lo", "-C", "-c", conf, "-M", mibs, "-m", "FLOWGUARD-MIB:SNMPv2-MIB", "udp:"+addr)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir, "SNMPCONFPATH="+dir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &lines{}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.add(sc.Text())
		}
	}()
	c.wait(t, "snmptrapd start", 1, "NET-SNMP version")
	return addr, c
}

func TestLifecycleThroughDispatcher(t *testing.T) {
	hook, hooks := webhookReceiver(t)
	sys, syslogs := udpReceiver(t)
	cef, cefs := udpReceiver(t)
	trapAddr, traps := snmptrapd(t)
	conf := fmt.Sprintf(`
notifiers:
  - {name: hook, type: webhook, url: %q}
  - {name: siem, type: syslog, network: udp, address: %q, format: rfc5424, hostname: fg}
  - {name: arcsight, type: syslog, network: udp, address: %q, format: cef, hostname: fg}
  - {name: nms, type: snmptrap, address: %q, version: "2c", community: public}
`, hook, sys, cef, trapAddr)
	var cfg notifiers.Config
	if err := yaml.Unmarshal([]byte(conf), &cfg); err != nil {
		t.Fatal(err)
	}
	disp, err := notifiers.Build(cfg, notifiers.Deps{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		disp.Close(ctx)
	})
	r := newRig(t, filepath.Join(t.TempDir(), "silences.json"))
	r.tr.cfg.Notify = disp.Send

	// Fire at 100 ports, escalate at 200, resolve a window after the scan.
	r.scan("10.0.0.5", "10.0.0.9", 30, 10)
	r.quiet(100)
	list := r.tr.List(Filter{Rule: "scan"})
	if len(list) != 1 || list[0].Status != alert.StatusResolved {
		t.Fatalf("tracker: %+v", list)
	}
	id := list[0].ID

	var got []alert.Alert
	for _, body := range hooks.wait(t, "webhook", 3, id) {
		var a alert.Alert
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("webhook body: %v: %s", err, body)
		}
		got = append(got, a)
	}
	if got[0].Status != "firing" || got[0].Notifications != 1 || got[0].Value != 100 ||
		got[1].Status != "firing" || got[1].Notifications != 2 || got[1].Value != 200 ||
		got[2].Status != "resolved" || got[2].Notifications != 3 || got[2].EndedAt == nil || got[2].Peak != 300 {
		t.Errorf("webhook: %+v", got)
	}
	if !strings.Contains(got[2].Message, "resolved after 29s: 10.0.0.5 probed 300 ports of 10.0.0.9 within 29s") {
		t.Errorf("resolved message: %s", got[2].Message)
	}
	syslogs.wait(t, "syslog firing", 2, `id="`+id+`"`, "flowguard@")
	syslogs.wait(t, "syslog resolved", 1, `id="`+id+`"`, `status="resolved" peak="300" ended_at="`)
	cefs.wait(t, "CEF resolved", 1, "externalId="+id, "act=resolved", "cfp3Label=peak cfp3=300")
	traps.wait(t, "trap firing", 2, "fgAlertId.0 = STRING: "+id, "OID: FLOWGUARD-MIB::flowguardAlert\t")
	traps.wait(t, "trap resolved", 1, "fgAlertId.0 = STRING: "+id, "OID: FLOWGUARD-MIB::flowguardAlertResolved", "fgValue.0 = STRING: 300")

	// A silence on the source: its scan is recorded, marked, not sent.
	sid, err := r.sil.Add(Silence{Matchers: []Matcher{{Name: "group.src_addr", Value: `10\.0\.0\.6`, IsRegex: true, IsEqual: true}},
		EndsAt: time.Now().Add(time.Hour), CreatedBy: "soc", Comment: "authorised scan"})
	if err != nil {
		t.Fatal(err)
	}
	r.scan("10.0.0.6", "10.0.0.9", 30, 10)
	r.scan("10.0.0.7", "10.0.0.9", 11, 10) // the sentinel
	silenced := r.tr.List(Filter{Rule: "scan", State: alert.StatusFiring})
	if len(silenced) != 2 || silenced[1].Group["src_addr"] != "10.0.0.6" || len(silenced[1].SilencedBy) != 1 ||
		silenced[1].SilencedBy[0] != sid || silenced[1].Notifications != 0 {
		t.Fatalf("silenced alert as recorded: %+v", silenced)
	}
	hooks.wait(t, "webhook sentinel", 1, `"src_addr":"10.0.0.7"`)
	syslogs.wait(t, "syslog sentinel", 1, `src_addr="10.0.0.7"`)
	cefs.wait(t, "CEF sentinel", 1, "src=10.0.0.7")
	traps.wait(t, "trap sentinel", 1, "src_addr=10.0.0.7")
	for name, c := range map[string]*lines{"webhook": hooks, "syslog": syslogs, "cef": cefs, "snmptrapd": traps} {
		if l := c.with("10.0.0.6"); len(l) > 0 {
			t.Errorf("%s received the silenced alert: %s", name, l[0])
		}
	}
}
