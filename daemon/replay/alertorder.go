package replay

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/flowguard/flowguard/alert"
)

// maxHeldAlerts bounds the alerts a replay holds to write in time order:
// each holds its sample flows, a few KB, so 10,000 are some tens of MB.
const maxHeldAlerts = 10000

// alertOrder writes a replay's alerts in the order of their fired_at. The
// engine raises them in the order the flows reach it, and a packet
// capture's flows reach it when the meter ends them: a long upload that
// ends with FIN comes before the port scan's SYNs, which wait for the
// inactive timeout, so the scan's alert (earlier in event time) is raised
// after the upload's. Holding the alerts until the end of the replay, at
// most max at a time, puts them back in time order. With max 0 alerts are
// written as they come (a paced replay stands for a live run).
type alertOrder struct {
	max   int
	write func(*alert.Alert)
	held  []*alert.Alert
	warn  io.Writer // told once when max bites
	bit   bool
}

// add holds a, writing the held alerts when there are max of them.
func (o *alertOrder) add(a *alert.Alert) {
	if o.max <= 0 {
		o.write(a)
		return
	}
	o.held = append(o.held, a)
	if len(o.held) >= o.max {
		if !o.bit && o.warn != nil {
			fmt.Fprintf(o.warn, "replay: more than %d alerts: each %d written in time order, not all of them\n", o.max, o.max)
		}
		o.bit = true
		o.flush()
	}
}

// flush writes the held alerts by fired_at (stable: alerts fired at the
// same moment keep the engine's order).
func (o *alertOrder) flush() {
	slices.SortStableFunc(o.held, func(a, b *alert.Alert) int { return cmp.Compare(a.FiredAt.UnixNano(), b.FiredAt.UnixNano()) })
	for i, a := range o.held {
		o.write(a)
		o.held[i] = nil
	}
	o.held = o.held[:0]
}
