package replay

import (
	"context"
	"time"

	"github.com/flowguard/flowguard/flow"
)

// pacer replays flows at speed times their own pace (0: as fast as
// possible), so that live notifiers and shared stores see a capture unfold
// as it happened.
type pacer struct {
	speed float64
	next  func([]flow.Flow)
	first int64
	start time.Time
	// ctx ends the pacing: once it is done, waits return at once and
	// flows are no longer handed on.
	ctx context.Context

	// idle, when set, runs every idleEvery (wall time) between batches and
	// while the pacer waits, on the goroutine that calls next: a shared
	// store's exchange with other instances.
	idle      func()
	idleEvery time.Duration
	idleAt    time.Time
}

// wait sleeps for d, running idle when it is due; it returns early when
// ctx is done.
func (p *pacer) wait(d time.Duration) {
	for end := time.Now().Add(d); ; {
		p.tick()
		left := time.Until(end)
		if left <= 0 {
			return
		}
		if p.idle != nil {
			left = min(left, p.idleEvery)
		}
		t := time.NewTimer(left)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// tick runs idle if it is due.
func (p *pacer) tick() {
	if p.idle == nil || time.Now().Before(p.idleAt) {
		return
	}
	p.idle()
	p.idleAt = time.Now().Add(p.idleEvery)
}

func (p *pacer) handle(b []flow.Flow) {
	if p.ctx.Err() != nil {
		return // interrupted: the source stops at its next check
	}
	if p.speed <= 0 {
		p.next(b)
		p.tick()
		return
	}
	from := 0
	for i := range b {
		et := b[i].EventTime()
		if et.IsZero() { // no timestamp: handed on with its neighbours, not paced
			continue
		}
		t := et.UnixNano()
		if p.first == 0 {
			p.first, p.start = t, time.Now()
		}
		due := p.start.Add(time.Duration(float64(t-p.first) / p.speed))
		if wait := time.Until(due); wait > time.Millisecond {
			p.next(b[from:i])
			from = i
			p.wait(wait)
			if p.ctx.Err() != nil {
				return
			}
		}
	}
	p.next(b[from:])
	p.tick()
}
