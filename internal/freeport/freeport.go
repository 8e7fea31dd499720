// Package freeport gives tests a loopback port that was free when asked,
// for a process or server that must be told its port before it binds.
package freeport

import (
	"net"
	"testing"
)

// Get returns a 127.0.0.1 port free at the time of asking: a UDP port for
// network "udp", a TCP port otherwise.
func Get(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
