package alertstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/web"
)

// API serves the alerts and silences under /api (web/README.md lists the
// routes). Mount it behind web.Server.Handler, which authenticates and
// refuses cross-site requests: the mutating routes rely on it.
type API struct {
	Tracker  *Tracker
	Silences *Silences
	// MaxPage is the largest page a list may ask for (web.Server.MaxPage).
	MaxPage int
}

// Register adds the routes to mux.
func (api *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/alerts", api.Alerts)
	mux.HandleFunc("GET /api/alerts/{id}", api.Alert)
	mux.HandleFunc("GET /api/silences", api.ListSilences)
	mux.HandleFunc("POST /api/silences", api.AddSilence)
	mux.HandleFunc("DELETE /api/silences/{id}", api.ExpireSilence)
}

func (api *API) maxPage() int {
	if api.MaxPage <= 0 {
		return 1000
	}
	return api.MaxPage
}

// Alerts: GET /api/alerts?state=firing|resolved&rule=ID&severity=high&addr=IP&limit=N&cursor=C,
// newest first (by first arrival), one page (web.ParsePage). addr matches
// any group value or any sample's address.
func (api *API) Alerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := web.ParsePage(r, api.maxPage())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := Filter{State: q.Get("state"), Rule: q.Get("rule"), Severity: q.Get("severity"), Limit: p.Limit}
	if f.State != "" && f.State != alert.StatusFiring && f.State != alert.StatusResolved {
		http.Error(w, "state: want firing or resolved", http.StatusBadRequest)
		return
	}
	if p.Cursor != "" {
		if f.Before, err = strconv.ParseUint(p.Cursor, 10, 64); err != nil || f.Before == 0 {
			http.Error(w, "cursor: not one this server gave", http.StatusBadRequest)
			return
		}
	}
	if s := q.Get("addr"); s != "" {
		if f.Addr, err = netip.ParseAddr(s); err != nil {
			http.Error(w, "addr: not an IP address", http.StatusBadRequest)
			return
		}
	}
	out, next := api.Tracker.Page(f)
	if next != 0 {
		web.SetNext(w, r, strconv.FormatUint(next, 10))
	}
	web.WriteJSONArray(w, out)
}

// Alert: GET /api/alerts/{id}: the alert, its value over time and its
// threshold.
func (api *API) Alert(w http.ResponseWriter, r *http.Request) {
	a, series, ok := api.Tracker.Get(r.PathValue("id"))
	if !ok {
		http.Error(w, "no alert with that id (the daemon keeps the latest ones)", http.StatusNotFound)
		return
	}
	if series == nil {
		series = []Point{}
	}
	web.WriteJSON(w, http.StatusOK, struct {
		Alert     *alert.Alert `json:"alert"`
		Series    []Point      `json:"series"`
		Threshold float64      `json:"threshold"`
	}{a, series, a.Threshold})
}

// ListSilences: GET /api/silences: every silence held, newest first.
func (api *API) ListSilences(w http.ResponseWriter, r *http.Request) {
	web.WriteJSONArray(w, api.Silences.List())
}

// AddSilence: POST /api/silences with a silence without id; 201 {"id"}.
// created_by is the authenticated user when Basic authentication named
// one.
func (api *API) AddSilence(w http.ResponseWriter, r *http.Request) {
	sl, err := decodeSilence(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		sl.CreatedBy = user // checked by web's authentication
	}
	id, err := api.Silences.Add(sl)
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		http.Error(w, "silence: "+verr.Msg, http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	web.WriteJSON(w, http.StatusCreated, map[string]string{"id": id})
}

// ExpireSilence: DELETE /api/silences/{id}: expires it; 200 {"id", "status"}.
func (api *API) ExpireSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := api.Silences.Expire(id)
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "no silence with that id", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	web.WriteJSON(w, http.StatusOK, map[string]string{"id": id, "status": StatusExpired})
}

// silenceIn is a posted silence: flowguard's snake_case keys, or
// Alertmanager's camelCase ones (as amtool and its API write them).
type silenceIn struct {
	ID         string      `json:"id"`
	Matchers   []matcherIn `json:"matchers"`
	StartsAt   *time.Time  `json:"starts_at"`
	EndsAt     *time.Time  `json:"ends_at"`
	CreatedBy  string      `json:"created_by"`
	Comment    string      `json:"comment"`
	Status     any         `json:"status"` // ignored: the server says
	AMStartsAt *time.Time  `json:"startsAt"`
	AMEndsAt   *time.Time  `json:"endsAt"`
	AMCreated  string      `json:"createdBy"`
}

type matcherIn struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	IsRegex   *bool  `json:"is_regex"`
	IsEqual   *bool  `json:"is_equal"`
	AMIsRegex *bool  `json:"isRegex"`
	AMIsEqual *bool  `json:"isEqual"`
}

// decodeSilence reads one posted silence. is_equal defaults to true, as in
// Alertmanager.
func decodeSilence(body io.Reader) (Silence, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var in silenceIn
	if err := dec.Decode(&in); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Silence{}, fmt.Errorf("silence: body over %d bytes", mbe.Limit)
		}
		return Silence{}, fmt.Errorf("silence: not a JSON silence: %v (keys: matchers [{name, value, is_regex, is_equal}], starts_at, ends_at, created_by, comment)", err)
	}
	sl := Silence{ID: in.ID, CreatedBy: strings.TrimSpace(in.CreatedBy + in.AMCreated), Comment: in.Comment}
	for _, t := range []*time.Time{in.StartsAt, in.AMStartsAt} {
		if t != nil {
			sl.StartsAt = *t
		}
	}
	for _, t := range []*time.Time{in.EndsAt, in.AMEndsAt} {
		if t != nil {
			sl.EndsAt = *t
		}
	}
	for _, m := range in.Matchers {
		out := Matcher{Name: m.Name, Value: m.Value, IsEqual: true}
		for _, b := range []*bool{m.IsRegex, m.AMIsRegex} {
			if b != nil {
				out.IsRegex = *b
			}
		}
		for _, b := range []*bool{m.IsEqual, m.AMIsEqual} {
			if b != nil {
				out.IsEqual = *b
			}
		}
		sl.Matchers = append(sl.Matchers, out)
	}
	return sl, nil
}
