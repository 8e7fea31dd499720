package main

import (
	"github.com/flowguard/flowguard/alert"
	"github.com/flowguard/flowguard/console"
	"github.com/flowguard/flowguard/daemon"
)

// attachConsole joins the web view (package console) to the daemon: the
// top talkers count every flow batch, the event stream carries every
// alert, the pages and /api/top sit on the daemon's HTTP server, and
// their counters on /metrics.
func attachConsole(d *daemon.Daemon) {
	c := console.New()
	d.ObserveFlows(c.Talkers.Handle)
	d.ObserveAlerts(func(a *alert.Alert) { c.Hub.Publish(console.Event{Kind: "firing", Alert: a}) })
	c.RegisterPages(d)
	d.HandleStream(console.EventsPath, c.Hub, c.Hub.Close)
	d.Collect(c)
}
