//go:build linux || darwin || freebsd || netbsd || openbsd

package syslog

import (
	"net"
	"syscall"
)

// alive peeks at a stream connection without blocking or consuming: a
// syslog receiver never sends, so end of file, data (a TLS close_notify)
// or an error all mean the stream is finished, and the next message must
// go over a new one instead of being written into a dead socket.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
			ok = true // nothing to read: open and quiet
		default:
			ok = false // 0 bytes: EOF; some bytes: unexpected data; or an error
		}
		return true
	})
	return ok && err == nil
}
