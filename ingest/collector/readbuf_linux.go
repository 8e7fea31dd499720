//go:build linux

package collector

import (
	"net"
	"syscall"
)

// setReadBuffer sizes c's receive buffer to n bytes and returns the size
// the kernel granted, in the same terms (0 when it cannot be read). It
// asks with SO_RCVBUFFORCE first, which passes over net.core.rmem_max
// when the process may (CAP_NET_ADMIN), and else with SO_RCVBUF, which the
// kernel caps at rmem_max.
func setReadBuffer(c *net.UDPConn, n int) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	granted := 0
	rc.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) != nil {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		// The kernel doubles the size asked, for its bookkeeping, and
		// reports the doubled figure.
		if v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil {
			granted = v / 2
		}
	})
	return granted
}
