//go:build linux

package collector

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// kernelDrops sums the drops column of /proc/net/udp and udp6 for sockets
// bound to port: datagrams the kernel threw away because the receive
// buffer was full.
func kernelDrops(port int) uint64 {
	if port == 0 {
		return 0
	}
	var total uint64
	for _, path := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // header
		for sc.Scan() {
			fields := bytes.Fields(sc.Bytes())
			if len(fields) < 13 {
				continue
			}
			local := fields[1]
			i := bytes.LastIndexByte(local, ':')
			if i < 0 {
				continue
			}
			p, err := strconv.ParseUint(string(local[i+1:]), 16, 16)
			if err != nil || int(p) != port {
				continue
			}
			d, err := strconv.ParseUint(string(fields[len(fields)-1]), 10, 64)
			if err == nil {
				total += d
			}
		}
	}
	return total
}
