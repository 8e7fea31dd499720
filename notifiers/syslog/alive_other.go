//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package syslog

import "net"

// alive cannot peek here; a dead stream shows at the next write.
func alive(net.Conn) bool { return true }
