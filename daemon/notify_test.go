package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/config"
)

// The notifiers component's Stop waits for the drain of the dispatcher a
// reload replaced: an alert it held for a slow webhook is delivered by the
// time Stop returns, as is the one the dispatcher in service held.
func TestNotifierSetStopWaitsForReplacedDispatcher(t *testing.T) {
	var mu sync.Mutex
	var hooked []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "before-reload") {
			time.Sleep(300 * time.Millisecond) // slower than a Stop that does not wait
		}
		mu.Lock()
		hooked = append(hooked, string(b))
		mu.Unlock()
	}))
	defer recv.Close()
	path := filepath.Join(t.TempDir(), "flowguard.yaml")
	if err := os.WriteFile(path, []byte("notifiers:\n  - {name: hook, type: webhook, url: "+recv.URL+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newNotifierSet(notifiersConfigOf(cfg, "json", path), notifiersDeps{Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.current().Send(&alert.Alert{ID: "before-reload", Rule: "r", Event: alert.EventFiring, FiredAt: t0})
	next, err := s.build(cfg.Notifiers) // as a reload builds it
	if err != nil {
		t.Fatal(err)
	}
	s.swap(next)
	s.current().Send(&alert.Alert{ID: "after-reload", Rule: "r", Event: alert.EventFiring, FiredAt: t0})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(hooked, "\n")
	mu.Unlock()
	for _, id := range []string{"before-reload", "after-reload"} {
		if !strings.Contains(got, `"`+id+`"`) {
			t.Errorf("alert %s was not delivered by Stop; webhook got: %q", id, got)
		}
	}
}
