package notifiers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestSpoolMaxBytesDecodes(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"1048576": 1 << 20, "512KiB": 512 << 10, "256MiB": 256 << 20, "1GiB": 1 << 30,
		"500kB": 500e3, "100MB": 100e6, "1GB": 1e9, "64 MiB": 64 << 20, "10B": 10,
	} {
		var d Delivery
		if err := yaml.Unmarshal([]byte("spool_max_bytes: "+in), &d); err != nil || d.SpoolMaxBytes != want {
			t.Errorf("%q: %d, %v; want %d", in, d.SpoolMaxBytes, err, want)
		}
	}
	for _, in := range []string{"lots", "-1", "1TB", "99999999999GiB"} {
		var d Delivery
		err := yaml.Unmarshal([]byte("\nspool_max_bytes: "+in), &d)
		if err == nil || !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), "is not a size") {
			t.Errorf("%q: %v", in, err)
		}
	}
	if d := (Delivery{}).withDefaults(); d.SpoolMaxBytes != 256<<20 {
		t.Errorf("default spool_max_bytes %d", d.SpoolMaxBytes)
	}
}

// A spool at spool_max_bytes drops new alerts with that reason and keeps
// what it holds.
func TestSpoolMaxBytesBites(t *testing.T) {
	r := &recorder{name: "hook", hold: make(chan struct{})} // hung: everything waits
	dl := fast()
	dl.SpoolDir = t.TempDir()
	dl.SpoolMaxBytes = 2000
	dl.Timeout = Duration(time.Hour)
	d, err := New([]Target{{Notifier: r, Delivery: dl}}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		d.Send(mk(fmt.Sprint(i), "r", "high"))
	}
	waitFor(t, "the spool to fill", func() bool { s := d.Stats()[0]; return s.Queued == 0 && s.Spooled+int(s.Dropped) == 50 })
	s := d.Stats()[0]
	if s.SpoolBytes > 2000 || s.Spooled == 0 || s.DroppedSpoolFull == 0 || s.Dropped != s.DroppedSpoolFull {
		t.Fatalf("stats %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d.Close(ctx)
	close(r.hold)
}
