package snmptrap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/lockedbuf"
	"github.com/flowguard/flowguard/internal/mdcode"
)

var listenRE = regexp.MustCompile(`udp:(127\.0\.0\.1:\d+)`)

// The snmptrapd command notifiers/README.md documents works as written on
// a machine where net-snmp never ran and no MIB was downloaded: run from
// the repository's root in an environment holding only PATH and fresh
// HOME, configuration and persistent folders, it loads FLOWGUARD-MIB and
// the IETF modules from notifiers/snmptrap/mibs, names every varbind of a
// trap flowguard sends, and never says "Cannot find module".
func TestDocumentedSnmptrapdCommand(t *testing.T) {
	need(t, "snmptrapd")
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	cmds, err := mdcode.Commands(filepath.Join(root, "notifiers", "README.md"), "The MIB", "snmptrapd ")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 {
		t.Fatalf("want one snmptrapd command in notifiers/README.md's \"The MIB\", found %q", cmds)
	}
	m := listenRE.FindStringSubmatch(cmds[0])
	if m == nil {
		t.Fatalf("the documented command listens on no udp:127.0.0.1:PORT: %s", cmds[0])
	}
	addr := m[1]

	fresh := t.TempDir()
	cmd := exec.Command("bash", "-c", "exec "+cmds[0])
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + fresh,
		"SNMP_PERSISTENT_DIR=" + filepath.Join(fresh, "persist"), "SNMPCONFPATH=" + filepath.Join(fresh, "conf")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr lockedbuf.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	td := &trapd{addr: addr, cond: make(chan struct{}, 1)}
	followed := make(chan struct{})
	go func() { td.follow(out); close(followed) }()
	if _, ok := td.find("NET-SNMP version", 10*time.Second); !ok {
		t.Fatalf("the documented snmptrapd did not start (is %s taken?); stderr:\n%s", addr, stderr.String())
	}

	n := newNotifier(t, Config{Address: addr, Version: "2c"})
	if err := n.Notify(context.Background(), sample("documented-command")); err != nil {
		t.Fatal(err)
	}
	line := td.wait(t, "FLOWGUARD-MIB::fgAlertId.0 = STRING: documented-command", 5*time.Second)
	checkTranslated(t, line)
	if !strings.Contains(line, "SNMPv2-MIB::sysUpTime.0 = Timeticks:") {
		t.Errorf("sysUpTime not named: %s", line)
	}
	if strings.Contains(line, ".1.3.6.1") || strings.Contains(line, "iso.") || strings.Contains(line, "enterprises.") {
		t.Errorf("a varbind left numeric: %s", line)
	}
	// Let snmptrapd finish whatever it would print, then read all of it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	<-followed
	cmd.Wait()
	errText, logged := stderr.String(), td.logged()
	// -Lo logs net-snmp's complaints to stdout, so both are read.
	for _, bad := range []string{"Cannot find module", "MIB search path", "Unlinked OID", "Did you mean"} {
		if strings.Contains(errText+logged, bad) {
			t.Errorf("snmptrapd said %q:\n%s\n%s", bad, errText, logged)
		}
	}
	if rest := netSNMPComplaints(errText); rest != "" {
		t.Errorf("snmptrapd complained on stderr:\n%s", rest)
	}
}
