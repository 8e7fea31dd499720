package main

import (
	"github.com/flowguard/flowguard/alertstate"
	"github.com/flowguard/flowguard/console"
	"github.com/flowguard/flowguard/daemon"
)

// attachConsole joins the web view (package console) to the daemon: the
// top talkers count every flow batch, the event stream carries every
// change of an alert the tracker records (firing, escalated, resolved,
// silenced), the pages and /api/top sit on the daemon's HTTP server, and
// their counters on /metrics.
func attachConsole(d *daemon.Daemon) {
	c := console.New()
	d.ObserveFlows(c.Talkers.Handle)
	d.Alerts().Observe(func(ev alertstate.Event) { c.Hub.Publish(console.Event{Kind: ev.Kind, Alert: ev.Alert}) })
	c.RegisterPages(d)
	d.HandleStream(console.EventsPath, c.Hub, c.Hub.Close)
	d.Collect(c)
}
