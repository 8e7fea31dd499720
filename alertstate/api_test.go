package alertstate

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/engine"
	"github.com/flowguard/flowguard/flow"
	"github.com/flowguard/flowguard/rules"
	"github.com/flowguard/flowguard/web"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const scanRules = `
rules:
  - id: scan
    severity: high
    tags: [T1046, scan]
    where: "proto == 6 && syn && !ack"
    distinct: dst_port
    group_by: [src_addr, dst_addr]
    window: 1m
    threshold: 100
    message: "{src_addr} probed {value} ports of {dst_addr} within {window}"
`

func synFlow(src, dst string, dport uint16, at time.Time) flow.Flow {
	f := flow.Flow{
		Type:    flow.TypeFile,
		SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: 40000, DstPort: dport,
		RawBytes: 44, RawPackets: 1, SamplingRate: 1,
		TimeFlowStart: at, TimeFlowEnd: at,
	}
	f.SetProto(flow.ProtoTCP)
	f.SetTCPFlags(flow.TCPSyn)
	f.Renormalise()
	return f
}

// rig is an engine feeding a tracker, as the daemon wires them.
type rig struct {
	eng  *engine.Engine
	tr   *Tracker
	sil  *Silences
	sent []*alert.Alert
	at   int // seconds after t0 of the next flow
	port int
}

func newRig(t testing.TB, silPath string) *rig {
	t.Helper()
	r := &rig{}
	var err error
	if r.sil, err = OpenSilences(silPath, nil); err != nil {
		t.Fatal(err)
	}
	r.tr = New(Config{Silences: r.sil, Notify: func(a *alert.Alert) { r.sent = append(r.sent, a) }})
	set, err := rules.LoadBytes("test.yaml", []byte(scanRules))
	if err != nil {
		t.Fatal(err)
	}
	if r.eng, err = engine.New(engine.Config{Emit: r.tr.Handle, Progress: r.tr.Progress}, set); err != nil {
		t.Fatal(err)
	}
	return r
}

// scan sends perSecond SYNs to new ports of dst from src each second.
func (r *rig) scan(src, dst string, seconds, perSecond int) {
	for range seconds {
		var b []flow.Flow
		for range perSecond {
			b = append(b, synFlow(src, dst, uint16(r.port), t0.Add(time.Duration(r.at)*time.Second)))
			r.port++
		}
		r.eng.Process(b)
		r.at++
	}
}

// quiet moves the clock with unrelated traffic.
func (r *rig) quiet(seconds int) {
	for range seconds {
		r.eng.Process([]flow.Flow{synFlow("10.1.0.1", "10.1.0.2", 80, t0.Add(time.Duration(r.at)*time.Second))})
		r.at++
	}
}

// serveAPI serves the API behind the real web server with Basic
// authentication (alice / wonderland) and returns its base URL.
func serveAPI(t *testing.T, api *API) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{Listen: "127.0.0.1:0", BasicAuthUsers: map[string]string{"alice": string(h)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	hs := srv.HTTPServer(mux)
	go hs.Serve(srv.Wrap(ln))
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

type call struct {
	method, path, body string
	user, pass         string            // "" no credentials
	header             map[string]string // extra headers
}

func do(t *testing.T, base string, c call) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func alice(method, path, body string) call {
	return call{method: method, path: path, body: body, user: "alice", pass: "wonderland",
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}}
}

// The alert list filters by state; an alert's page has its series and
// threshold; silences are created, listed, refused with clear messages,
// and expired, only by an authenticated user from the same origin; they
// survive a restart.
func TestAPI(t *testing.T) {
	silPath := filepath.Join(t.TempDir(), "state", "silences.json")
	r := newRig(t, silPath)
	base := serveAPI(t, &API{Tracker: r.tr, Silences: r.sil})

	r.scan("10.0.0.5", "10.0.0.9", 30, 10) // fires at 100, escalates at 200
	r.quiet(100)                           // resolves
	r.scan("10.0.0.6", "10.0.0.9", 15, 10) // fires, stays firing
	var list []*alert.Alert
	code, body := do(t, base, alice("GET", "/api/alerts?state=firing", ""))
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].Group["src_addr"] != "10.0.0.6" {
		t.Fatalf("firing: %d %s", code, body)
	}
	code, body = do(t, base, alice("GET", "/api/alerts?state=resolved", ""))
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].EndedAt == nil || list[0].Peak != 300 {
		t.Fatalf("resolved: %d %s", code, body)
	}
	resolved := list[0]
	if resolved.Notifications != 3 || len(resolved.SilencedBy) != 0 || !strings.Contains(body, `"silenced_by": []`) {
		t.Errorf("resolved alert: notifications %d silenced_by %v", resolved.Notifications, resolved.SilencedBy)
	}
	if code, body = do(t, base, alice("GET", "/api/alerts?state=open", "")); code != 400 || !strings.Contains(body, "firing or resolved") {
		t.Errorf("bad state: %d %s", code, body)
	}

	var one struct {
		Alert     *alert.Alert `json:"alert"`
		Series    []Point      `json:"series"`
		Threshold float64      `json:"threshold"`
	}
	code, body = do(t, base, alice("GET", "/api/alerts/"+resolved.ID, ""))
	if code != 200 || json.Unmarshal([]byte(body), &one) != nil {
		t.Fatalf("alert page: %d %s", code, body)
	}
	if one.Threshold != 100 || one.Alert.ID != resolved.ID || len(one.Series) < 10 || one.Series[0].V != 100 {
		t.Errorf("alert page: threshold %v, %d points, first %+v", one.Threshold, len(one.Series), one.Series)
	}
	for i := 1; i < len(one.Series); i++ {
		if !one.Series[i].T.After(one.Series[i-1].T) {
			t.Fatalf("series out of order at %d: %+v", i, one.Series)
		}
	}
	if code, _ = do(t, base, alice("GET", "/api/alerts/nope", "")); code != 404 {
		t.Errorf("unknown alert: %d", code)
	}

	// Silences: credentials and origin first.
	good := `{"matchers":[{"name":"group.src_addr","value":"10.0.0.7"},{"name":"tag","value":"T10.*","is_regex":true}],
		"ends_at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","comment":"pentest","created_by":"someone"}`
	for _, c := range []struct {
		name string
		c    call
		want int
	}{
		{"no credentials", call{method: "POST", path: "/api/silences", body: good}, 401},
		{"wrong password", call{method: "POST", path: "/api/silences", body: good, user: "alice", pass: "nope"}, 401},
		{"cross-site", call{method: "POST", path: "/api/silences", body: good, user: "alice", pass: "wonderland",
			header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}}, 403},
		{"list without credentials", call{method: "GET", path: "/api/silences"}, 401},
	} {
		if code, body := do(t, base, c.c); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if got := r.sil.List(); len(got) != 0 {
		t.Fatalf("a refused request made a silence: %+v", got)
	}
	for _, c := range []struct{ body, want string }{
		{`{"matchers":[{"name":"src_addr","value":"x"}],"ends_at":"2099-01-01T00:00:00Z","comment":"c"}`, "want rule, severity, tag or group.<field>"},
		{`{"matchers":[{"name":"rule","value":"(","is_regex":true}],"ends_at":"2099-01-01T00:00:00Z","comment":"c"}`, "not a regular expression"},
		{`{"matchers":[{"name":"rule","value":".*","is_regex":true}],"ends_at":"2099-01-01T00:00:00Z","comment":"c"}`, "would hold back every alert"},
		{`{"matchers":[],"ends_at":"2099-01-01T00:00:00Z","comment":"c"}`, "at least one"},
		{`{"matchers":[{"name":"rule","value":"scan"}],"comment":"c"}`, "ends_at: required"},
		{`{"matchers":[{"name":"rule","value":"scan"}],"ends_at":"2001-01-01T00:00:00Z","comment":"c"}`, "in the past"},
		{`{"matchers":[{"name":"rule","value":"scan"}],"ends_at":"2099-01-01T00:00:00Z"}`, "comment: required"},
		{`{"matchers":[{"name":"rule","value":"scan"}],"ends_at":"2099-01-01T00:00:00Z","comment":"c","id":"x"}`, "the server gives it"},
		{`{"matcher":[]}`, "unknown field"},
		{`not json`, "not a JSON silence"},
	} {
		code, body := do(t, base, alice("POST", "/api/silences", c.body))
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 400 saying %q", c.body, code, body, c.want)
		}
	}
	code, body = do(t, base, alice("POST", "/api/silences", good))
	var created map[string]string
	if code != 201 || json.Unmarshal([]byte(body), &created) != nil || created["id"] == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	// Alertmanager's own keys (amtool's JSON) work too; is_equal defaults
	// to true there as here.
	am := `{"matchers":[{"name":"rule","value":"scan","isRegex":false},{"name":"severity","value":"low","isEqual":false}],
		"startsAt":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","endsAt":"` + time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339) + `","createdBy":"x","comment":"later"}`
	if code, body = do(t, base, alice("POST", "/api/silences", am)); code != 201 {
		t.Fatalf("create in Alertmanager's keys: %d %s", code, body)
	}
	var sils []Silence
	code, body = do(t, base, alice("GET", "/api/silences", ""))
	if code != 200 || json.Unmarshal([]byte(body), &sils) != nil || len(sils) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	if sils[0].Status != StatusPending || sils[1].Status != StatusActive || sils[1].CreatedBy != "alice" || sils[1].ID != created["id"] {
		t.Errorf("listed: %+v", sils)
	}
	if !sils[0].Matchers[0].IsEqual || sils[0].Matchers[1].IsEqual {
		t.Errorf("is_equal: %+v", sils[0].Matchers)
	}

	// Restart: the silences are read back from the file.
	again, err := OpenSilences(silPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.List(); len(got) != 2 || got[1].ID != created["id"] || got[1].Matchers[1].re == nil {
		t.Fatalf("after restart: %+v", got)
	}

	if code, body = do(t, base, call{method: "DELETE", path: "/api/silences/" + created["id"], user: "alice", pass: "nope"}); code != 401 {
		t.Errorf("expire with a wrong password: %d %s", code, body)
	}
	if code, body = do(t, base, alice("DELETE", "/api/silences/"+created["id"], "")); code != 200 {
		t.Fatalf("expire: %d %s", code, body)
	}
	if code, _ = do(t, base, alice("DELETE", "/api/silences/nope", "")); code != 404 {
		t.Errorf("expire unknown: %d", code)
	}
	if got := r.sil.List(); got[1].Status != StatusExpired {
		t.Errorf("after expire: %+v", got[1])
	}
	again, _ = OpenSilences(silPath, nil)
	if got := again.List(); got[1].Status != StatusExpired {
		t.Errorf("expiry not saved: %+v", got[1])
	}
}

// A silenced alert is recorded, marked with the silence, and not sent;
// a silence created while an alert fires holds back its next
// notification; the end of an alert nobody was told of is not sent; an
// expired silence lets notifications through again.
func TestSilencedAlerts(t *testing.T) {
	r := newRig(t, "")
	var events []string
	r.tr.Observe(func(e Event) { events = append(events, e.Kind) })
	id, err := r.sil.Add(Silence{Matchers: []Matcher{{Name: "group.src_addr", Value: "10.0.0.5", IsEqual: true}},
		EndsAt: time.Now().Add(time.Hour), CreatedBy: "t", Comment: "known scanner"})
	if err != nil {
		t.Fatal(err)
	}
	r.scan("10.0.0.5", "10.0.0.9", 30, 10)
	r.quiet(100)
	if len(r.sent) != 0 {
		t.Fatalf("a silenced alert was sent: %v", r.sent[0].Text())
	}
	list := r.tr.List(Filter{})
	if len(list) != 1 || list[0].Status != alert.StatusResolved || len(list[0].SilencedBy) != 1 || list[0].SilencedBy[0] != id || list[0].Notifications != 0 {
		t.Fatalf("recorded: %+v", list)
	}
	if strings.Join(events, ",") != "silenced,silenced,silenced" {
		t.Errorf("events %v", events)
	}

	// Another scanner fires; a silence made now holds back its
	// escalation and its end.
	r.scan("10.0.0.6", "10.0.0.9", 11, 10)
	if len(r.sent) != 1 || r.sent[0].Notifications != 1 || r.sent[0].Event != alert.EventFiring {
		t.Fatalf("sent %d", len(r.sent))
	}
	id2, err := r.sil.Add(Silence{Matchers: []Matcher{{Name: "rule", Value: "scan", IsEqual: true}, {Name: "tag", Value: "T1046", IsEqual: true}},
		EndsAt: time.Now().Add(time.Hour), CreatedBy: "t", Comment: "c"})
	if err != nil {
		t.Fatal(err)
	}
	r.scan("10.0.0.6", "10.0.0.9", 20, 10)
	if len(r.sent) != 1 {
		t.Fatalf("escalation of a silenced alert sent")
	}
	if a, _, _ := r.tr.Get(r.sent[0].ID); len(a.SilencedBy) != 1 || a.SilencedBy[0] != id2 || a.Peak < 200 {
		t.Errorf("stored: silenced_by %v peak %v", a.SilencedBy, a.Peak)
	}
	if err := r.sil.Expire(id2); err != nil {
		t.Fatal(err)
	}
	r.quiet(100)
	if len(r.sent) != 2 || r.sent[1].Status != alert.StatusResolved || r.sent[1].Notifications != 2 {
		t.Fatalf("after the silence expired: %d sent", len(r.sent))
	}
	if st := r.tr.Stats(); st.Alerts != 2 || st.Firing != 0 || st.Silenced != 4 {
		t.Errorf("stats %+v", st)
	}
}

// The tracker holds at most MaxAlerts, forgetting resolved ones first, and
// each series at most MaxPoints, spanning the whole alert.
func TestTrackerBounds(t *testing.T) {
	tr := New(Config{MaxAlerts: 3, MaxPoints: 8})
	mk := func(id string, status string, at time.Time) *alert.Alert {
		return &alert.Alert{ID: id, Status: status, LastSeen: at, Value: float64(at.Unix() % 1000)}
	}
	tr.Handle(mk("a", alert.StatusFiring, t0))
	tr.Handle(mk("b", alert.StatusResolved, t0))
	tr.Handle(mk("c", alert.StatusFiring, t0))
	tr.Handle(mk("d", alert.StatusFiring, t0))
	if _, _, ok := tr.Get("b"); ok {
		t.Error("the resolved alert was kept over a firing one")
	}
	if _, _, ok := tr.Get("a"); !ok {
		t.Error("a firing alert was forgotten while a resolved one was there")
	}
	// Firing (notifiers.Deps.Firing): held and firing only.
	for id, want := range map[string]bool{"a": true, "d": true, "b": false, "unknown": false} {
		if tr.Firing(id) != want {
			t.Errorf("Firing(%q) = %v, want %v", id, !want, want)
		}
	}
	tr.Handle(mk("d", alert.StatusResolved, t0))
	if tr.Firing("d") {
		t.Error("Firing after the alert was resolved")
	}
	for i := range 100 {
		tr.Progress(engine.Progress{ID: "a", At: t0.Add(time.Duration(i+1) * time.Second), Value: float64(i)})
	}
	_, s, _ := tr.Get("a")
	if len(s) > 8 || len(s) < 4 || s[len(s)-1].V != 99 || !s[0].T.Before(t0.Add(20*time.Second)) {
		t.Errorf("series %+v", s)
	}
	if st := tr.Stats(); st.Alerts != 3 || st.Forgotten != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Hostile silences over HTTP: each bound refuses with a clear 400 and
// leaves nothing behind; past MaxSilences live ones, the next is refused
// until one expires.
func TestSilenceBounds(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "silences.json"))
	base := serveAPI(t, &API{Tracker: r.tr, Silences: r.sil})
	silence := func(matchers, comment string) string {
		return `{"matchers":[` + matchers + `],"ends_at":"2099-01-01T00:00:00Z","created_by":"t","comment":"` + comment + `"}`
	}
	one := `{"name":"rule","value":"scan"}`
	many := strings.TrimSuffix(strings.Repeat(one+",", MaxMatchers+1), ",")
	for _, c := range []struct{ name, body, want string }{
		{"matchers", silence(many, "c"), fmt.Sprintf("at most %d", MaxMatchers)},
		{"value", silence(`{"name":"rule","value":"`+strings.Repeat("v", MaxValueBytes+1)+`"}`, "c"), "bytes of UTF-8"},
		{"comment", silence(one, strings.Repeat("c", MaxCommentBytes+1)), "bytes of UTF-8"},
		{"body", silence(one, strings.Repeat("c", 4<<20)), "body over"},
	} {
		code, body := do(t, base, alice("POST", "/api/silences", c.body))
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %.200q, want 400 saying %q", c.name, code, body, c.want)
		}
	}
	if n := len(r.sil.List()); n != 0 {
		t.Fatalf("refused silences left %d behind", n)
	}
	var last string
	for i := range MaxSilences {
		code, body := do(t, base, alice("POST", "/api/silences", silence(fmt.Sprintf(`{"name":"rule","value":"r%d"}`, i), "c")))
		if code != 201 {
			t.Fatalf("silence %d: %d %s", i, code, body)
		}
		last = body
	}
	code, body := do(t, base, alice("POST", "/api/silences", silence(one, "c")))
	if code != 400 || !strings.Contains(body, "expire some first") {
		t.Fatalf("silence %d: %d %s, want 400 saying to expire some", MaxSilences+1, code, body)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(last), &created); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, base, alice("DELETE", "/api/silences/"+created["id"], "")); code != 200 {
		t.Fatalf("expire: %d %s", code, body)
	}
	if code, body := do(t, base, alice("POST", "/api/silences", silence(one, "c"))); code != 201 {
		t.Fatalf("after one expired: %d %s", code, body)
	}
}
