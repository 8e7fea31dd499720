package enrich

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTimer reports CPU time of the benchmark's thread per op next to the
// wall time, which on a shared machine also counts time the thread spent
// waiting for a CPU.
type cpuTimer struct {
	start time.Duration
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuTimer {
	runtime.LockOSThread()
	return cpuTimer{threadCPU()}
}

func (c cpuTimer) report(b *testing.B) {
	d := threadCPU() - c.start
	runtime.UnlockOSThread()
	if b.N > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
