//go:build linux

package collector

import (
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Source addresses as the kernel writes them: IPv4, IPv6, IPv4-mapped
// IPv6 (as IPv4), link-local IPv6 with its interface's name as the zone
// (the number where no interface has it), and a family not known (no
// source: the datagram is skipped).
func TestSockaddrPort(t *testing.T) {
	r := &mmsgReader{}
	lo, err := net.InterfaceByIndex(1)
	if err != nil {
		t.Skip(err)
	}
	in4 := func(a [4]byte, port uint16) *unix.RawSockaddrInet6 {
		var sa unix.RawSockaddrInet6
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = a
		sa4.Port = htons(port)
		return &sa
	}
	in6 := func(a string, port uint16, scope uint32) *unix.RawSockaddrInet6 {
		return &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: netip.MustParseAddr(a).As16(), Port: htons(port), Scope_id: scope}
	}
	for _, c := range []struct {
		sa   *unix.RawSockaddrInet6
		n    uint32
		want string
	}{
		{in4([4]byte{192, 0, 2, 7}, 2055), unix.SizeofSockaddrInet4, "192.0.2.7:2055"},
		{in4([4]byte{192, 0, 2, 7}, 2055), 2, "invalid AddrPort"},
		{in6("2001:db8::1", 4739, 0), unix.SizeofSockaddrInet6, "[2001:db8::1]:4739"},
		{in6("::ffff:192.0.2.9", 65535, 0), unix.SizeofSockaddrInet6, "192.0.2.9:65535"},
		{in6("fe80::1", 9995, 1), unix.SizeofSockaddrInet6, "[fe80::1%" + lo.Name + "]:9995"},
		{in6("fe80::1", 9995, 1e6), unix.SizeofSockaddrInet6, "[fe80::1%1000000]:9995"},
		{in6("fe80::1", 9995, 1), unix.SizeofSockaddrInet6, "[fe80::1%" + lo.Name + "]:9995"},
		{&unix.RawSockaddrInet6{Family: unix.AF_UNIX}, unix.SizeofSockaddrInet6, "invalid AddrPort"},
	} {
		if got := r.sockaddrPort(c.sa, c.n).String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

func htons(p uint16) uint16 { return ntohs(p) }
