package snmptrap

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// The end of an alert is a flowguardAlertResolved notification, which a
// real snmptrapd names from the MIB, with the peak as fgValue and the
// episode's summary as fgMessage.
func TestResolvedNotificationTranslatedByMIB(t *testing.T) {
	td := startTrapd(t)
	n := newNotifier(t, Config{Address: td.addr, Version: "2c"})
	a := sample("resolved-trap")
	ended := a.FiredAt.Add(4*time.Minute + 10*time.Second)
	a.Status, a.Peak, a.EndedAt = alert.StatusResolved, 2000, &ended
	a.Message = "resolved after 4m10s: 198.51.100.23 probed 2000 ports of 10.20.30.40 within 4m10s"
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	line := td.wait(t, "fgAlertId.0 = STRING: resolved-trap", 5*time.Second)
	for _, want := range []string{
		"SNMPv2-MIB::snmpTrapOID.0 = OID: FLOWGUARD-MIB::flowguardAlertResolved",
		`FLOWGUARD-MIB::fgValue.0 = STRING: 2000`,
		`FLOWGUARD-MIB::fgMessage.0 = STRING: resolved after 4m10s: 198.51.100.23 probed 2000 ports`,
		`FLOWGUARD-MIB::fgFiredAt.0 = STRING: 2024-5-1,12:30:45.6,+0:0`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("trap lacks %q:\n%s", want, line)
		}
	}
}

// The resolved notification's OID in the code is the MIB's.
func TestResolvedOIDMatchesMIB(t *testing.T) {
	need(t, "snmptranslate")
	cmd := exec.Command("snmptranslate", "-M", mibPath(t), "-m", "FLOWGUARD-MIB", "-On", "FLOWGUARD-MIB::flowguardAlertResolved")
	cmd.Env = snmpEnv(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, Config{Address: "127.0.0.1:1", Version: "2c"})
	a := sample("x")
	a.Status = alert.StatusResolved
	if got := n.Varbinds(a)[1].Value.(string); strings.TrimSpace(string(out)) != got {
		t.Errorf("flowguardAlertResolved is %s in the MIB, %s in the code", strings.TrimSpace(string(out)), got)
	}
}
