//go:build !linux

package collector

// kernelDrops is known on Linux only.
func kernelDrops(int) uint64 { return 0 }
