package flowguard_test

import (
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

// cloneURL is the address README's five-minute start clones; the test
// clones this checkout instead.
const cloneURL = "https://github.com/flowguard/flowguard.git"

// Every command of README.md's "Five-minute start" runs as written, in
// order, on a fresh clone of this checkout (its committed state): the
// build, the two receivers, the collector on examples/five-minutes.yaml,
// softflowd on loopback and an nmap SYN scan. The scan's alert must reach
// the collector's stdout, the syslog receiver and the webhook receiver.
// softflowd -i lo and nmap -sS need root, which CI has.
func TestReadmeFiveMinuteStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: softflowd captures on lo and nmap -sS sends raw packets (CI runs as root)")
	}
	for _, tool := range []string{"git", "make", "go", "softflowd", "nmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found (apt-get install softflowd nmap)", tool)
			}
			t.Skipf("%s not found (apt-get install softflowd nmap)", tool)
		}
	}
	root, _ := filepath.Abs(".")
	lines, err := mdcode.SectionLines(filepath.Join(root, "README.md"), "Five-minute start")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 6 || !strings.Contains(lines[0], cloneURL) {
		t.Fatalf("the section's commands: %q (want a clone of %s first)", lines, cloneURL)
	}
	tmp := t.TempDir()
	origin := filepath.Join(tmp, "origin", "flowguard.git")
	if out, err := exec.Command("git", "clone", "-q", "--bare", root, origin).CombinedOutput(); err != nil {
		t.Fatalf("git clone --bare: %v\n%s", err, out)
	}
	var script strings.Builder
	script.WriteString("set -e\ntrap 'echo \"five-minute: a command failed (exit $?)\"' ERR\n")
	for _, l := range lines {
		l = strings.ReplaceAll(l, cloneURL, origin)
		l = strings.TrimPrefix(l, "sudo ") // root already
		script.WriteString(l + "\n")
	}
	script.WriteString("echo five-minute: commands done\n")
	work := filepath.Join(tmp, "work")
	os.MkdirAll(work, 0o755)
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The receivers, the collector and softflowd run on in the
		// background: stop the whole process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		time.Sleep(time.Second)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})

	want := map[string]*regexp.Regexp{
		"the collector's stdout": regexp.MustCompile(`\[HIGH\] vertical-port-scan .*dst_addr=127\.0\.0\.9 src_addr=127\.0\.0\.1`),
		"the syslog receiver":    regexp.MustCompile(`syslog udp 127\.0\.0\.1:\d+: <\d+>1 .* vertical-port-scan \[flowguard@32473 .*dst_addr="127\.0\.0\.9"`),
		"the webhook receiver":   regexp.MustCompile(`webhook POST /alerts 127\.0\.0\.1:\d+: \{.*"rule":"vertical-port-scan".*"group":\{"dst_addr":"127\.0\.0\.9","src_addr":"127\.0\.0\.1"\}`),
	}
	deadline := time.Now().Add(8 * time.Minute) // a cold build of the clone on a busy machine
	for {
		text := out.String()
		if strings.Contains(text, "five-minute: a command failed") {
			t.Fatalf("a command of the section failed after %s:\n%s", time.Since(start).Round(time.Second), text)
		}
		missing := []string{}
		for where, re := range want {
			if !re.MatchString(text) {
				missing = append(missing, where)
			}
		}
		if len(missing) == 0 && strings.Contains(text, "five-minute: commands done") {
			t.Logf("the alert reached all three in %s", time.Since(start).Round(time.Second))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the alert has not reached %v; output:\n%s", time.Since(start).Round(time.Second), missing, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
