package alertmanager

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/notifiers"
	"github.com/flowguard/flowguard/notifiers/webhook"
)

// A firing alert stays active in a real Alertmanager through its
// escalation; its resolution reaches Alertmanager at once with endsAt
// its ended_at, however long its window.
func TestResolvedAlertEndsInAlertmanager(t *testing.T) {
	am := startAM(t, minimalAMConfig, "")
	am.start()
	n := newNotifier(t, config(am.base))
	a := sample("vertical-port-scan", "1h")
	a.Status, a.Peak, a.Notifications = alert.StatusFiring, a.Value, 1
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	esc := *a
	esc.Value, esc.Peak, esc.Notifications = 3100, 3100, 2
	if err := n.Notify(context.Background(), &esc); err != nil {
		t.Fatal(err)
	}
	got := am.alerts(`alertname="vertical-port-scan"`)
	if len(got) != 1 || got[0].Annotations["value"] != "3100" || got[0].Status.State != "active" {
		t.Fatalf("after the escalation: %+v", got)
	}
	res := esc
	ended := time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond)
	res.Status, res.EndedAt, res.Notifications = alert.StatusResolved, &ended, 3
	res.Message = "resolved after 20s: 198.51.100.23 probed 3100 distinct ports"
	if err := n.Notify(context.Background(), &res); err != nil {
		t.Fatal(err)
	}
	// Alertmanager lists resolved alerts no more: it took the endsAt.
	waitFor(t, 3*time.Second, "resolved alert still active in Alertmanager", func() bool {
		return len(am.alerts(`alertname="vertical-port-scan"`)) == 0
	})
	if st := n.Stats(); st.Active != 0 || st.Resolved != 1 {
		t.Errorf("stats %+v: want nothing active, one resolved", st)
	}
}

// webhookCatcher is a real HTTP server that keeps the JSON bodies posted
// to it.
type webhookCatcher struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
}

func newWebhookCatcher(t *testing.T) *webhookCatcher {
	c := &webhookCatcher{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err == nil {
			c.mu.Lock()
			c.bodies = append(c.bodies, m)
			c.mu.Unlock()
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// last returns the latest body whose status is status, or nil.
func (c *webhookCatcher) last(status string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.bodies) - 1; i >= 0; i-- {
		if c.bodies[i]["status"] == status {
			return c.bodies[i]
		}
	}
	return nil
}

// flowguard's webhook in format alertmanager speaks the resolved
// notification as Alertmanager itself does: a real Alertmanager, fed the
// same alert and its resolution, sends its webhook receiver a version 4
// message with the same keys, status "resolved" on the message and the
// alert, and endsAt set; flowguard's says the same of the same alert.
func TestWebhookResolvedAsAlertmanagerSendsIt(t *testing.T) {
	real := newWebhookCatcher(t)
	am := startAM(t, "route: {receiver: hook, group_wait: 100ms, group_interval: 200ms, group_by: [alertname]}\n"+
		"receivers: [{name: hook, webhook_configs: [{url: '"+real.srv.URL+"', send_resolved: true}]}]\n", "")
	am.start()
	n := newNotifier(t, config(am.base))
	a := sample("vertical-port-scan", "1h")
	a.Status, a.Peak = alert.StatusFiring, a.Value
	if err := n.Notify(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "no firing webhook from Alertmanager", func() bool { return real.last("firing") != nil })
	res := *a
	ended := time.Now().UTC().Truncate(time.Millisecond)
	res.Status, res.EndedAt = alert.StatusResolved, &ended
	if err := n.Notify(context.Background(), &res); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "no resolved webhook from Alertmanager", func() bool { return real.last("resolved") != nil })

	ours := newWebhookCatcher(t)
	wcfg := webhook.Config{URL: ours.srv.URL, Format: "alertmanager", Timeout: notifiers.Duration(5 * time.Second)}
	w, err := webhook.New("hook", wcfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Notify(context.Background(), &res); err != nil {
		t.Fatal(err)
	}
	want, got := real.last("resolved"), ours.last("resolved")
	if got == nil {
		t.Fatalf("flowguard's webhook sent no resolved message: %v", ours.bodies)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Errorf("message keys %v, Alertmanager's %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	wa, ga := want["alerts"].([]any)[0].(map[string]any), got["alerts"].([]any)[0].(map[string]any)
	if !slices.Equal(slices.Sorted(maps.Keys(ga)), slices.Sorted(maps.Keys(wa))) {
		t.Errorf("alert keys %v, Alertmanager's %v", slices.Sorted(maps.Keys(ga)), slices.Sorted(maps.Keys(wa)))
	}
	if wa["status"] != "resolved" || ga["status"] != "resolved" || got["version"] != want["version"] {
		t.Errorf("status %v (Alertmanager's %v), version %v (%v)", ga["status"], wa["status"], got["version"], want["version"])
	}
	gEnd, err1 := time.Parse(time.RFC3339Nano, ga["endsAt"].(string))
	wEnd, err2 := time.Parse(time.RFC3339Nano, wa["endsAt"].(string))
	if err1 != nil || err2 != nil || !gEnd.Equal(ended) || !wEnd.Equal(ended) {
		t.Errorf("endsAt %v (Alertmanager's %v), want %v", ga["endsAt"], wa["endsAt"], ended)
	}
	if ga["labels"].(map[string]any)["alertname"] != wa["labels"].(map[string]any)["alertname"] {
		t.Errorf("alertname %v, Alertmanager's %v", ga["labels"], wa["labels"])
	}
}
