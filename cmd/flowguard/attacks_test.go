package main

import (
	bin "encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// attackCaptures are the captures of testdata/make-attack-captures.sh
// (see testdata/README.md) and the one alert each must raise with the
// bundled rules: rule, group and ATT&CK technique. Nothing else may fire.
var attackCaptures = []struct {
	file string
	want map[string]string // rule:group → technique
}{
	{"synflood.pcap", map[string]string{"syn-flood:dst_addr=127.0.0.40,dst_port=80": "T1498.001"}},
	{"synflood-randsrc.pcap", map[string]string{"syn-flood:dst_addr=127.0.0.40,dst_port=80": "T1498.001"}},
	{"synflood-ports.pcap", map[string]string{"syn-flood:dst_addr=127.0.0.40,dst_port=80": "T1498.001"}},
	{"udpflood.pcap", map[string]string{"udp-flood:dst_addr=127.0.0.44": "T1498.001"}},
	{"icmpflood.pcap", map[string]string{"icmp-flood:dst_addr=127.0.0.46": "T1498.001"}},
	{"fragflood.pcap", map[string]string{"fragment-flood:dst_addr=127.0.0.53": "T1498.001"}},
	{"reflection.pcap", map[string]string{
		"amplification-volume:dst_addr=127.0.0.47,src_port=53":      "T1498.002",
		"amplification-reflectors:dst_addr=127.0.0.47,src_port=53":  "T1498.002",
		"amplification-volume:dst_addr=127.0.0.48,src_port=123":     "T1498.002",
		"amplification-reflectors:dst_addr=127.0.0.48,src_port=123": "T1498.002",
	}},
	{"dscan.pcap", map[string]string{"distributed-port-scan:dst_addr=127.0.0.49": "T1046"}},
	{"bruteforce.pcap", map[string]string{"login-brute-force:dst_addr=127.0.0.50,dst_port=22,src_addr=127.0.0.51": "T1110"}},
}

// checkAttackAlerts compares alerts with a capture's expectations.
func checkAttackAlerts(t *testing.T, alerts []map[string]any, want map[string]string) {
	t.Helper()
	alerts = fired(alerts) // one alert each: not its escalations
	var got []string
	for _, a := range alerts {
		k := key(a)
		got = append(got, k)
		tech, ok := want[k]
		if !ok {
			t.Errorf("unexpected alert %s: %v", k, a["message"])
			continue
		}
		if !hasTag(a, tech) {
			t.Errorf("%s lacks %s: %v", k, tech, a["tags"])
		}
	}
	sort.Strings(got)
	for k := range want {
		n := 0
		for _, g := range got {
			if g == k {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d alerts, want 1 (got %v)", k, n, got)
		}
	}
}

// Each attack capture, replayed as packets, raises exactly its alert.
func TestReplayAttackCaptures(t *testing.T) {
	for _, c := range attackCaptures {
		t.Run(c.file, func(t *testing.T) {
			alerts, _, code := replayJSON(t, filepath.Join("..", "..", "testdata", c.file))
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			checkAttackAlerts(t, alerts, c.want)
		})
	}
}

// The reflection alerts name the service.
func TestAmplificationAlertNamesService(t *testing.T) {
	alerts, _, _ := replayJSON(t, filepath.Join("..", "..", "testdata", "reflection.pcap"))
	for _, a := range alerts {
		msg, _ := a["message"].(string)
		want := map[any]string{"53": "dns ", "123": "ntp "}[fmt.Sprint(group(a)["src_port"])]
		if want == "" || !strings.HasPrefix(msg, want) {
			t.Errorf("%s %v: message %q does not name the service", a["rule"], group(a), msg)
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
}

// softflowd meters each attack capture and exports it as NetFlow v9 and
// IPFIX; the datagrams are captured as they leave it (a UDP socket of the
// test, written out as a pcap of export datagrams) and replayed: the same
// alerts as the packets give, whatever the exporter's flow timeouts did
// to the floods' flows.
func TestReplayAttackCapturesExportedBySoftflowd(t *testing.T) {
	sf := softflowdPath(t)
	for _, c := range attackCaptures {
		for _, v := range []string{"9", "10"} {
			t.Run(c.file+"/v"+v, func(t *testing.T) {
				pcap, _ := filepath.Abs(filepath.Join("..", "..", "testdata", c.file))
				export := filepath.Join(t.TempDir(), "export.pcap")
				captureSoftflowd(t, sf, pcap, v, export)
				alerts, _, code := replayJSON(t, export)
				if code != 0 {
					t.Fatalf("exit %d", code)
				}
				checkAttackAlerts(t, alerts, c.want)
			})
		}
	}
}

// captureSoftflowd runs softflowd over a capture, exporting version v to
// a UDP socket on 127.0.0.1, and writes what arrives to out as a pcap of
// IPv4/UDP datagrams stamped with their arrival.
func captureSoftflowd(t *testing.T, sf, pcap, v, out string) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadBuffer(8 << 20)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	out1, err := exec.Command("timeout", "30", sf, "-r", pcap, "-n", fmt.Sprintf("127.0.0.1:%d", port),
		"-v", v, "-a", "-d", "-p", filepath.Join(t.TempDir(), "pid"), "-c", "none").CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd: %v\n%s", err, out1)
	}
	// softflowd has exited: every datagram it sent is in the socket's
	// buffer (8 MiB; loopback does not drop within one)
	w := newDatagramPcap()
	buf := make([]byte, 65536)
	for {
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		w.add(time.Now(), from, port, buf[:n])
	}
	if w.n == 0 {
		t.Fatal("softflowd exported nothing")
	}
	if err := os.WriteFile(out, w.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// datagramPcap builds a pcap (LINKTYPE_RAW: IPv4 packets) of UDP
// datagrams, as tcpdump would have captured them arriving.
type datagramPcap struct {
	b []byte
	n int
}

func newDatagramPcap() *datagramPcap {
	w := &datagramPcap{}
	w.b = bin.LittleEndian.AppendUint32(w.b, 0xa1b2c3d4)
	w.b = bin.LittleEndian.AppendUint16(w.b, 2)
	w.b = bin.LittleEndian.AppendUint16(w.b, 4)
	w.b = bin.LittleEndian.AppendUint64(w.b, 0)     // zone, sigfigs
	w.b = bin.LittleEndian.AppendUint32(w.b, 1<<18) // snaplen
	w.b = bin.LittleEndian.AppendUint32(w.b, 101)   // LINKTYPE_RAW
	return w
}

// add appends one datagram from → 127.0.0.1:port.
func (w *datagramPcap) add(at time.Time, from *net.UDPAddr, port int, payload []byte) {
	n := 28 + len(payload)
	w.b = bin.LittleEndian.AppendUint32(w.b, uint32(at.Unix()))
	w.b = bin.LittleEndian.AppendUint32(w.b, uint32(at.Nanosecond()/1000))
	w.b = bin.LittleEndian.AppendUint32(w.b, uint32(n))
	w.b = bin.LittleEndian.AppendUint32(w.b, uint32(n))
	ip := []byte{0x45, 0, byte(n >> 8), byte(n), 0, 0, 0x40, 0, 64, 17, 0, 0}
	ip = append(ip, from.IP.To4()...)
	ip = append(ip, 127, 0, 0, 1)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	bin.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	w.b = append(w.b, ip...)
	w.b = bin.BigEndian.AppendUint16(w.b, uint16(from.Port))
	w.b = bin.BigEndian.AppendUint16(w.b, uint16(port))
	w.b = bin.BigEndian.AppendUint16(w.b, uint16(8+len(payload)))
	w.b = bin.BigEndian.AppendUint16(w.b, 0) // no UDP checksum
	w.b = append(w.b, payload...)
	w.n++
}

func (w *datagramPcap) bytes() []byte { return w.b }

// softflowdPath finds softflowd; without it the test is skipped, or fails
// in CI, which installs it.
func softflowdPath(t *testing.T) string {
	t.Helper()
	sf, err := exec.LookPath("softflowd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("softflowd is not installed")
		}
		t.Skip("softflowd is not installed")
	}
	return sf
}
