package capture

import (
	"context"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// A live capture on loopback, filtered to one address pair, meters the
// datagrams and the TCP connection the test makes into flows.
func TestCaptureLoopback(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump (for the filter) not installed")
	}
	c, err := Open(Config{Interface: "lo", Filter: "host 127.0.0.77 and host 127.0.0.76"})
	if err != nil {
		t.Skipf("no AF_PACKET here (needs root or CAP_NET_RAW): %v", err)
	}
	var (
		mu    sync.Mutex
		flows []flow.Flow
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(b []flow.Flow) {
			mu.Lock()
			flows = append(flows, b...)
			mu.Unlock()
		})
	}()
	time.Sleep(200 * time.Millisecond) // the ring is open; let Run start polling

	// 20 UDP datagrams of 100 bytes each.
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.77"), Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.76")}, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		cli.Write(make([]byte, 100))
	}
	cli.Close()
	// One TCP connection with a small exchange.
	ln, err := net.Listen("tcp", "127.0.0.77:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if s, err := ln.Accept(); err == nil {
			buf := make([]byte, 10)
			s.Read(buf)
			s.Write([]byte("pong"))
			s.Close()
		}
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.76")}}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	buf := make([]byte, 10)
	conn.Read(buf)
	conn.Close()
	// Traffic outside the filter must not be seen.
	other, _ := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP("127.0.0.78"), Port: 9})
	other.Write([]byte("x"))
	other.Close()

	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var udp, tcp int
	for _, f := range flows {
		if f.Type != flow.TypeCapture {
			t.Errorf("type %q", f.Type)
		}
		if f.DstAddr.String() == "127.0.0.78" {
			t.Errorf("the filter let through %v", f)
		}
		switch {
		case f.Proto == flow.ProtoUDP && f.SrcAddr.String() == "127.0.0.76":
			udp++
			if f.Packets != 20 || f.Bytes != 20*(100+8+20) {
				t.Errorf("UDP flow: %d packets %d bytes, want 20 and %d", f.Packets, f.Bytes, 20*128)
			}
		case f.Proto == flow.ProtoTCP && f.SrcAddr.String() == "127.0.0.76":
			tcp++
			if !f.SYN || !f.FIN {
				t.Errorf("client TCP flow flags %#x", f.TCPFlags)
			}
		}
	}
	if udp != 1 || tcp != 1 {
		t.Fatalf("got %d UDP and %d TCP client flows, want 1 and 1 (all flows: %d)", udp, tcp, len(flows))
	}
	if st := c.Stats(); st.Packets == 0 || st.Meter.Flows == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseDDD(t *testing.T) {
	prog, err := parseDDD([]byte("2\n6 0 0 65535\n6 0 0 0\n"))
	if err != nil || len(prog) != 2 || prog[0].K != 65535 {
		t.Fatalf("%v %v", prog, err)
	}
	if _, err := parseDDD([]byte("3\n6 0 0 1\n")); err == nil {
		t.Fatal("a short program was accepted")
	}
}
