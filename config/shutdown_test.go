package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The stop deadline defaults below the unit's TimeoutStopSec, and can be
// set; a malformed value names itself.
func TestShutdownTimeout(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Shutdown.Deadline(); got != DefaultShutdownTimeout || got >= 30*time.Second {
		t.Errorf("default deadline %v, want %v (under TimeoutStopSec=30s)", got, DefaultShutdownTimeout)
	}
	c, err = Load(write(t, "shutdown: {timeout: 8s}\n"))
	if err != nil || c.Shutdown.Deadline() != 8*time.Second {
		t.Fatalf("shutdown.timeout 8s: %v, %v", c, err)
	}
	if _, err := Load(write(t, "shutdown: {timeout: soon}\n")); err == nil || !strings.Contains(err.Error(), `"soon" is not a duration`) {
		t.Errorf("bad timeout: %v", err)
	}
	if _, err := Load(write(t, "shutdown: {timout: 8s}\n")); err == nil || !strings.Contains(err.Error(), "timout") {
		t.Errorf("misspelt key: %v", err)
	}
}

// The example systemd unit gives flowguard more time to stop than its
// default deadline, and sets memory and task ceilings.
func TestSystemdUnitFitsTheDeadline(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "systemd", "flowguard.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	stop, err := time.ParseDuration(keys["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", keys["TimeoutStopSec"], err)
	}
	if DefaultShutdownTimeout+3*time.Second > stop {
		t.Errorf("TimeoutStopSec=%v leaves less than 3s after the default deadline %v", stop, DefaultShutdownTimeout)
	}
	for _, k := range []string{"MemoryMax", "TasksMax"} {
		if keys[k] == "" {
			t.Errorf("the unit sets no %s", k)
		}
	}
}
