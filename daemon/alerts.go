package daemon

import (
	"path/filepath"

	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/alertstate"
)

// SilencesFile is the file in data_dir that holds the silences.
const SilencesFile = "silences.json"

// newTracker opens the silences (data_dir/silences.json; in memory
// without a data_dir) and builds the alert tracker between the engine and
// the notifiers: it records every emission, holds back the silenced ones
// and tells the alert observers.
func (d *Daemon) newTracker() error {
	path := ""
	if d.cfg.DataDir != "" {
		path = filepath.Join(d.cfg.DataDir, SilencesFile)
	} else {
		d.log.Warn("no data_dir: silences last until the daemon stops")
	}
	sil, err := alertstate.OpenSilences(path, nil)
	if err != nil {
		return ConfigError{err}
	}
	d.silences = sil
	d.tracker = alertstate.New(alertstate.Config{Silences: sil, Notify: func(a *alert.Alert) { d.notify().Send(a) }})
	d.tracker.Observe(func(ev alertstate.Event) {
		for _, o := range d.alertObservers {
			o(ev.Alert)
		}
	})
	return nil
}

// Alerts returns the alert tracker: the alerts as they live, with their
// series, and Observe for every change (firing, escalated, resolved,
// silenced), as the web view's event stream needs.
func (d *Daemon) Alerts() *alertstate.Tracker { return d.tracker }

// alertsAPI is the alertstate API over the daemon's tracker and silences.
func (d *Daemon) alertsAPI() *alertstate.API {
	return &alertstate.API{Tracker: d.tracker, Silences: d.silences, MaxPage: d.cfg.HTTP.Limits.MaxPage}
}
