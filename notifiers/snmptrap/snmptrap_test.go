package snmptrap

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/internal/freeport"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/notifiers/leaktest"
)

// The tests run the real snmptrapd (Debian: snmptrapd, snmp) with
// FLOWGUARD-MIB loaded from mibs/, beside the IETF modules it imports
// (Debian ships those only in non-free, so the folder holds them).

const (
	v3User     = "fguser"
	v3Auth     = "authpass-1234"
	v3Priv     = "privpass-5678"
	engineHex  = "80007ed904666c6f7767756172642d74657374" // "flowguard-test"
	informUser = "fginform"
)

func mibPath(t *testing.T) string {
	t.Helper()
	mibs, _ := filepath.Abs("mibs")
	return mibs
}

// snmpEnv is the environment for net-snmp tools: configuration and
// persistent state in a fresh folder of the test's, no default MIBs.
func snmpEnv(t *testing.T) []string {
	dir := t.TempDir()
	return append(os.Environ(), "SNMPCONFPATH="+dir, "SNMP_PERSISTENT_DIR="+dir, "MIBS=")
}

// netSNMPComplaints drops from net-snmp's stderr the notices it prints
// when it first sets up a persistent folder ("Created directory: ..."),
// which say nothing of the MIB, and returns the rest.
func netSNMPComplaints(stderr string) string {
	var keep []string
	for _, line := range strings.Split(stderr, "\n") {
		if line == "" || strings.HasPrefix(line, "Created directory:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: apt-get install snmptrapd snmp", tool)
			}
			t.Skipf("%s not found: apt-get install snmptrapd snmp", tool)
		}
	}
}

// trapd is a running snmptrapd whose log lines arrive on lines.
type trapd struct {
	addr  string
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
}

func startTrapd(t *testing.T) *trapd {
	t.Helper()
	need(t, "snmptrapd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmptrapd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`authCommunity log public
createUser -e 0x%s %s SHA %s AES %s
authUser log %s
createUser %s SHA %s AES %s
authUser log %s
`, engineHex, v3User, v3Auth, v3Priv, v3User, informUser, v3Auth, v3Priv, informUser)), 0o600)
	port := freeport.Get(t, "udp")
	td := &trapd{addr: fmt.Sprintf("127.0.0.1:%d", port), cond: make(chan struct{}, 1)}
	cmd := exec.Command("snmptrapd", "-f", "-Lo", "-C", "-c", conf, "-M", mibPath(t), "-m", "FLOWGUARD-MIB:SNMPv2-MIB",
		"udp:"+td.addr)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir, "SNMPCONFPATH="+dir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go td.follow(out)
	td.wait(t, "NET-SNMP version", 10*time.Second)
	return td
}

// follow collects snmptrapd's log lines from out until it closes.
func (td *trapd) follow(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		td.mu.Lock()
		td.lines = append(td.lines, sc.Text())
		td.mu.Unlock()
		select {
		case td.cond <- struct{}{}:
		default:
		}
	}
}

// logged returns every line snmptrapd logged so far.
func (td *trapd) logged() string {
	td.mu.Lock()
	defer td.mu.Unlock()
	return strings.Join(td.lines, "\n")
}

// wait returns the first line holding want, or fails after d.
func (td *trapd) wait(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	if l, ok := td.find(want, d); ok {
		return l
	}
	td.mu.Lock()
	defer td.mu.Unlock()
	t.Fatalf("snmptrapd did not log %q within %v; it logged:\n%s", want, d, strings.Join(td.lines, "\n"))
	return ""
}

func (td *trapd) find(want string, d time.Duration) (string, bool) {
	deadline := time.After(d)
	for {
		td.mu.Lock()
		for _, l := range td.lines {
			if strings.Contains(l, want) {
				td.mu.Unlock()
				return l, true
			}
		}
		td.mu.Unlock()
		select {
		case <-td.cond:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			return "", false
		}
	}
}

func sample(id string) *alert.Alert {
	t0 := time.Date(2024, 5, 1, 12, 30, 45, 600000000, time.UTC)
	return &alert.Alert{
		ID: id, Rule: "vertical-port-scan", Name: "Vertical port scan", Severity: "high",
		Tags: []string{"T1046", "scan"}, Group: map[string]any{"src_addr": "198.51.100.23", "dst_addr": "10.20.30.40"},
		Value: 1543.5, Threshold: 100, Window: "1m0s", FiredAt: t0,
		Message: "198.51.100.23 probed 1543 ports",
	}
}

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	base := DefaultConfig()
	base.Address, base.Version, base.Inform, base.Timeout = cfg.Address, cfg.Version, cfg.Inform, notifiers.Duration(2*time.Second)
	if cfg.Timeout != 0 {
		base.Timeout = cfg.Timeout
	}
	if cfg.Community != "" {
		base.Community = cfg.Community
	}
	if cfg.V3.User != "" {
		base.V3 = cfg.V3
	}
	n, err := New("nms", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// checkTranslated checks that snmptrapd named every object from the MIB.
func checkTranslated(t *testing.T, line string) {
	t.Helper()
	for _, want := range []string{
		"SNMPv2-MIB::snmpTrapOID.0 = OID: FLOWGUARD-MIB::flowguardAlert",
		`FLOWGUARD-MIB::fgRule.0 = STRING: vertical-port-scan`,
		`FLOWGUARD-MIB::fgName.0 = STRING: Vertical port scan`,
		`FLOWGUARD-MIB::fgSeverity.0 = INTEGER: high(4)`,
		`FLOWGUARD-MIB::fgGroup.0 = STRING: dst_addr=10.20.30.40 src_addr=198.51.100.23`,
		`FLOWGUARD-MIB::fgValue.0 = STRING: 1543.5`,
		`FLOWGUARD-MIB::fgThreshold.0 = STRING: 100`,
		`FLOWGUARD-MIB::fgWindow.0 = STRING: 1m0s`,
		`FLOWGUARD-MIB::fgTags.0 = STRING: T1046,scan`,
		`FLOWGUARD-MIB::fgMessage.0 = STRING: 198.51.100.23 probed 1543 ports`,
		`FLOWGUARD-MIB::fgFiredAt.0 = STRING: 2024-5-1,12:30:45.6,+0:0`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("trap lacks %q:\n%s", want, line)
		}
	}
}

var ticksRE = regexp.MustCompile(`sysUpTime.0 = Timeticks: \((\d+)\)`)

func TestV2cTrapTranslatedByMIB(t *testing.T) {
	td := startTrapd(t)
	n := newNotifier(t, Config{Address: td.addr, Version: "2c"})
	time.Sleep(300 * time.Millisecond) // sysUpTime must show it
	if err := n.Notify(context.Background(), sample("v2c-trap")); err != nil {
		t.Fatal(err)
	}
	line := td.wait(t, "fgAlertId.0 = STRING: v2c-trap", 5*time.Second)
	t.Logf("snmptrapd logged: %s", line)
	checkTranslated(t, line)
	m := ticksRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no sysUpTime in %s", line)
	}
	// Hundredths of a second since the notifier started: about 30.
	if ticks, _ := strconv.Atoi(m[1]); ticks < 25 || ticks > 300 {
		t.Errorf("sysUpTime.0 = %d hundredths, want about 30", ticks)
	}
}

func TestV2cInform(t *testing.T) {
	td := startTrapd(t)
	n := newNotifier(t, Config{Address: td.addr, Version: "2c", Inform: true})
	if err := n.Notify(context.Background(), sample("v2c-inform")); err != nil {
		t.Fatalf("inform not acknowledged: %v", err)
	}
	checkTranslated(t, td.wait(t, "fgAlertId.0 = STRING: v2c-inform", 5*time.Second))

	// No receiver: the inform times out, a retryable error.
	nobody := newNotifier(t, Config{Address: fmt.Sprintf("127.0.0.1:%d", freeport.Get(t, "udp")), Version: "2c", Inform: true,
		Timeout: notifiers.Duration(200 * time.Millisecond)})
	err := nobody.Notify(context.Background(), sample("lost"))
	if err == nil || notifiers.IsPermanent(err) {
		t.Fatalf("unanswered inform: %v", err)
	}
}

func v3(user, auth, priv string) V3 {
	return V3{User: user, SecurityLevel: "authPriv", AuthProtocol: "SHA", AuthPassword: auth,
		PrivProtocol: "AES", PrivPassword: priv, EngineID: engineHex}
}

func TestV3AuthPriv(t *testing.T) {
	td := startTrapd(t)
	wrongAuth := newNotifier(t, Config{Address: td.addr, Version: "3", V3: v3(v3User, "wrong-auth-pass", v3Priv)})
	wrongPriv := newNotifier(t, Config{Address: td.addr, Version: "3", V3: v3(v3User, v3Auth, "wrong-priv-pass")})
	right := newNotifier(t, Config{Address: td.addr, Version: "3", V3: v3(v3User, v3Auth, v3Priv)})
	ctx := context.Background()
	// Traps are not acknowledged: Notify succeeds either way; the
	// receiver decides.
	if err := wrongAuth.Notify(ctx, sample("v3-wrong-auth")); err != nil {
		t.Fatal(err)
	}
	if err := wrongPriv.Notify(ctx, sample("v3-wrong-priv")); err != nil {
		t.Fatal(err)
	}
	if err := right.Notify(ctx, sample("v3-right")); err != nil {
		t.Fatal(err)
	}
	checkTranslated(t, td.wait(t, "fgAlertId.0 = STRING: v3-right", 5*time.Second))
	for _, id := range []string{"v3-wrong-auth", "v3-wrong-priv"} {
		if l, ok := td.find(id, 500*time.Millisecond); ok {
			t.Errorf("snmptrapd logged a trap sent with a wrong password: %s", l)
		}
	}
	if got := hex.EncodeToString(right.EngineID()); got != engineHex {
		t.Errorf("engine id %s", got)
	}
}

func TestV3Inform(t *testing.T) {
	td := startTrapd(t)
	cfg := v3(informUser, v3Auth, v3Priv)
	cfg.EngineID = "" // the receiver is authoritative for informs
	n := newNotifier(t, Config{Address: td.addr, Version: "3", Inform: true, V3: cfg})
	if err := n.Notify(context.Background(), sample("v3-inform")); err != nil {
		t.Fatalf("v3 inform: %v", err)
	}
	checkTranslated(t, td.wait(t, "fgAlertId.0 = STRING: v3-inform", 5*time.Second))

	bad := cfg
	bad.AuthPassword = "wrong-auth-pass"
	nb := newNotifier(t, Config{Address: td.addr, Version: "3", Inform: true, V3: bad,
		Timeout: notifiers.Duration(300 * time.Millisecond)})
	err := nb.Notify(context.Background(), sample("v3-inform-bad"))
	if err == nil {
		t.Fatal("v3 inform with a wrong password was acknowledged")
	}
	leaktest.Check(t, "v3 inform error", err.Error(), "wrong-auth-pass", v3Priv)
	if l, ok := td.find("v3-inform-bad", 300*time.Millisecond); ok {
		t.Errorf("logged: %s", l)
	}
}

// The MIB parses cleanly with net-snmp: every object, the notification
// and the conformance statements, without a warning.
func TestMIBParses(t *testing.T) {
	need(t, "snmptranslate")
	cmd := exec.Command("snmptranslate", "-M", mibPath(t), "-m", "FLOWGUARD-MIB", "-Tp", "-IR", "flowguardMIB")
	cmd.Env = snmpEnv(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if complaints := netSNMPComplaints(stderr.String()); err != nil || complaints != "" {
		t.Fatalf("snmptranslate: %v\n%s", err, complaints)
	}
	for _, want := range []string{"flowguardMIB(32473)", "flowguardAlert(1)", "fgRule(2)", "fgSeverity(4)",
		"Values: info(1), low(2), medium(3), high(4), critical(5)", "fgFiredAt(11)", "fgAlertNotificationsGroup(2)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tree lacks %s:\n%s", want, out)
		}
	}
	for _, name := range []string{"flowguardAlert", "fgAlertId.0", "fgFiredAt.0"} {
		cmd := exec.Command("snmptranslate", "-M", mibPath(t), "-m", "FLOWGUARD-MIB", "-On", "FLOWGUARD-MIB::"+name)
		cmd.Env = snmpEnv(t)
		out, _ := cmd.Output()
		n := newNotifier(t, Config{Address: "127.0.0.1:1", Version: "2c"})
		vb := n.Varbinds(sample("x"))
		var ours string
		switch name {
		case "flowguardAlert":
			ours = vb[1].Value.(string)
		case "fgAlertId.0":
			ours = vb[2].Name
		case "fgFiredAt.0":
			ours = vb[len(vb)-1].Name
		}
		if strings.TrimSpace(string(out)) != ours {
			t.Errorf("%s is %s in the MIB, %s in the code", name, strings.TrimSpace(string(out)), ours)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("FG_SNMP_AUTH", "from-env-auth")
	cfg := DefaultConfig()
	cfg.Version = "3"
	cfg.BaseOID = "1.3.x"
	cfg.V3 = V3{SecurityLevel: "authPriv", AuthProtocol: "SHA1", AuthPassword: "${FG_SNMP_AUTH}", PrivProtocol: "AES", PrivPassword: "short", EngineID: "zz"}
	_, err := New("x", cfg)
	for _, want := range []string{"address: must be set", `base_oid: "1.3.x"`, "v3.user: must be set",
		`v3.auth_protocol: "SHA1"`, "v3.priv_password: must have at least 8", `v3.engine_id: "zz"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not hold %s", err, want)
		}
	}
	if err != nil {
		leaktest.Check(t, "config error", err.Error(), "from-env-auth")
	}
	cfg = DefaultConfig()
	cfg.Address = "nms.example"
	cfg.BaseOID = ".1.3.6.1.4.1.99999.7"
	n, err := New("x", cfg)
	if err != nil || n.cfg.Address != "nms.example:162" || n.Varbinds(sample("x"))[1].Value != ".1.3.6.1.4.1.99999.7.0.1" {
		t.Fatalf("defaults: %v %+v", err, n)
	}
}
