//go:build linux

package collector

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// A listener is granted the receive buffer it asks for, past
// net.core.rmem_max when the process has CAP_NET_ADMIN (SO_RCVBUFFORCE),
// capped at rmem_max when it has not; ReadBuffer tells which. Run as root,
// the test runs itself again without CAP_NET_ADMIN (setpriv), so that both
// ways are checked.
func TestListenerReadBuffer(t *testing.T) {
	rmemMax := procInt(t, "/proc/sys/net/core/rmem_max")
	netAdmin := hasCap(t, 12) // CAP_NET_ADMIN
	for _, asked := range []int{256 << 10, rmemMax + 1<<20} {
		l, err := Listen(Config{Address: "127.0.0.1:0", ReadBuffer: asked}, Decoders{})
		if err != nil {
			t.Fatal(err)
		}
		granted, gotAsked := l.ReadBuffer()
		t.Logf("CAP_NET_ADMIN %v: asked %d, granted %d", netAdmin, asked, granted)
		l.Close()
		want := asked
		if !netAdmin {
			want = min(asked, rmemMax)
		}
		if granted != want || gotAsked != asked {
			t.Errorf("asked %d (CAP_NET_ADMIN %v, rmem_max %d): granted %d (asked %d), want %d",
				asked, netAdmin, rmemMax, granted, gotAsked, want)
		}
	}
	if !netAdmin || os.Getenv("FLOWGUARD_TEST_NO_NET_ADMIN") != "" {
		return
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Log("no setpriv: the capped way is not checked")
		return
	}
	cmd := exec.Command(setpriv, "--inh-caps=-net_admin", "--bounding-set=-net_admin",
		os.Args[0], "-test.run=^TestListenerReadBuffer$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "FLOWGUARD_TEST_NO_NET_ADMIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("without CAP_NET_ADMIN: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestListenerReadBuffer") {
		t.Fatalf("without CAP_NET_ADMIN, the test did not run:\n%s", out)
	}
}

// Config refuses a receive buffer beyond MaxReadBuffer: with
// CAP_NET_ADMIN it would be granted in full.
func TestConfigReadBufferBound(t *testing.T) {
	for _, c := range []struct {
		n  int
		ok bool
	}{{0, true}, {MaxReadBuffer, true}, {MaxReadBuffer + 1, false}, {-1, false}} {
		err := Config{Address: "127.0.0.1:0", ReadBuffer: c.n}.Validate()
		if (err == nil) != c.ok {
			t.Errorf("read_buffer %d: %v", c.n, err)
		}
	}
}

func procInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hasCap tells whether capability bit is in this process's effective set.
func hasCap(t *testing.T, bit uint) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return caps&(1<<bit) != 0
		}
	}
	t.Skip("no CapEff in /proc/self/status")
	return false
}
