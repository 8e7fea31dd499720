package file

import (
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// A source reading a slow input (a pipe that delivered part of a gzipped
// capture, then nothing: `replay <(ssh host zcat ...)`) returns within a
// moment of its ctx ending, with ctx's error, instead of waiting for the
// writer.
func TestRunStopsOnSlowInput(t *testing.T) {
	capture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "portscan.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "slow.pcap.gz")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	release := make(chan struct{})
	defer close(release)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		zw := gzip.NewWriter(w)
		zw.Write(capture[:64<<10]) // a part, then the writer stalls
		zw.Flush()
		<-release
	}()
	src, _, err := Open(fifo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	flows := 0
	go func() { done <- src.Run(ctx, func(b []flow.Flow) { flows += len(b) }) }()
	time.Sleep(300 * time.Millisecond) // Run reads what came, then waits
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
		t.Logf("returned %v after cancel", time.Since(cancelled))
	case <-time.After(time.Second):
		t.Fatal("Run still waits on the input a second after its ctx ended")
	}
}
