//go:build !linux

package collector

import (
	"net"
	"time"
)

const rxTimeOOB = 0

// stampArrivals: no kernel arrival stamps here; the read time is used.
func stampArrivals(*net.UDPConn) bool { return false }

func arrival(_ []byte, fallback time.Time) time.Time { return fallback }
