//go:build !linux

package collector

import "net"

// setReadBuffer asks for a receive buffer of n bytes; what the system
// granted is not read here (0).
func setReadBuffer(c *net.UDPConn, n int) int {
	_ = c.SetReadBuffer(n)
	return 0
}
