package alertmanager

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/alertstate"
	"github.com/flowguard/flowguard/notifiers"
)

// An alert flowguard's tracker still has firing stays active in a real
// Alertmanager long past its window (the notifier extends its endsAt with
// each re-send) and is resolved there only once flowguard resolves it,
// with endsAt its ended_at. An alert the tracker does not know ends at its
// timer end, as before. The path is the daemon's: tracker, dispatcher,
// notifier with Deps.Firing from the tracker.
func TestFiringAlertOutlastsItsWindow(t *testing.T) {
	lookTool(t, "prometheus-alertmanager", "amtool")
	am := startAM(t, minimalAMConfig, "")
	am.start()
	var disp *notifiers.Dispatcher
	tr := alertstate.New(alertstate.Config{Notify: func(a *alert.Alert) { disp.Send(a) }})
	deps := notifiers.Deps{Logger: slog.New(slog.DiscardHandler), Firing: tr.Firing}
	cfg := config(am.base)
	cfg.ResendInterval = notifiers.Duration(250 * time.Millisecond) // keep = max(window, 1s) = 1s
	n, err := New("am", cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	disp, err = notifiers.New([]notifiers.Target{{Notifier: n, Type: "alertmanager"}}, nil, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		disp.Close(ctx)
	})

	const window = 1500 * time.Millisecond
	long := sample("long-scan", window.String())
	long.Status, long.Event, long.Peak = alert.StatusFiring, alert.EventFiring, long.Value
	tr.Handle(long)
	if err := n.Notify(context.Background(), sample("untracked", window.String())); err != nil {
		t.Fatal(err)
	}
	fired := time.Now()
	waitFor(t, 5*time.Second, "the tracked alert did not reach Alertmanager", func() bool {
		return len(am.query("alertname=long-scan")) == 1
	})

	// Three windows later: the untracked one ended at its timer, the
	// firing one is still active, its endsAt ahead.
	for time.Since(fired) < 3*window {
		time.Sleep(100 * time.Millisecond)
	}
	if got := am.query("alertname=untracked"); len(got) != 0 {
		t.Errorf("an alert the tracker does not know is still active past its window: %+v", got)
	}
	got := am.query("alertname=long-scan")
	if len(got) != 1 || got[0].Status.State != "active" || !got[0].EndsAt.After(time.Now()) {
		t.Fatalf("a firing alert %v after it was sent (window %v): %+v, want active with endsAt ahead", time.Since(fired).Round(time.Millisecond), window, got)
	}
	if st := n.Stats(); st.Resolved != 1 || st.Active != 1 {
		t.Errorf("stats %+v: want the untracked one resolved, the firing one active", st)
	}

	// flowguard resolves it: Alertmanager ends it at once, at its ended_at.
	res := *long
	ended := time.Now().UTC().Truncate(time.Millisecond)
	res.Status, res.Event, res.EndedAt = alert.StatusResolved, alert.EventResolved, &ended
	tr.Handle(&res)
	waitFor(t, 3*time.Second, "the resolved alert is still active in Alertmanager", func() bool {
		return len(am.query("alertname=long-scan")) == 0
	})
	if st := n.Stats(); st.Resolved != 2 || st.Active != 0 {
		t.Errorf("stats %+v: want both resolved, nothing active", st)
	}
}
