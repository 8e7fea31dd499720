//go:build linux

package collector

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// rxTimeOOB is the control buffer one datagram's arrival time needs.
const rxTimeOOB = 64

// stampArrivals asks the kernel to stamp each datagram with its arrival
// time (SO_TIMESTAMPNS, the realtime clock). The stamp is the one packet
// captures on the same host record (tcpdump, AF_PACKET), so a capture of
// the export traffic replays with the receive times the collector used.
func stampArrivals(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// arrival returns the kernel's arrival stamp in a datagram's control
// messages, or fallback when there is none. It allocates nothing.
func arrival(oob []byte, fallback time.Time) time.Time {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < syscall.SizeofCmsghdr || n > len(oob) {
			break
		}
		data := oob[cmsgAlign(syscall.SizeofCmsghdr):n]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&data[0]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec)).UTC()
		}
		next := cmsgAlign(n)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return fallback
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}
