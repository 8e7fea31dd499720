package rediswindow

import "github.com/flowguard/flowguard/engine/window"

// peeker is the memory windows' Peek: a key's Result without an update.
type peeker interface {
	Peek(key []byte) (window.Result, bool)
}

// Changed appends the keys of a Sum or Distinct window whose other
// instances' part rose with the flushes answered since the last call, with
// their combined Result, and forgets them: a burst that crosses the
// threshold only once the instances' parts meet fires without a further
// local flow. Only keys this instance still holds are reported (the
// engine needs one of its flows to describe the group). The window starts
// keeping changed keys at the first call, at most Config.ExchangeMaxKeys
// between two calls; past that, rises are counted in
// Stats.ExchangeDropped and the key is compared at its next update, as
// before. Call it from the goroutine that updates the window.
func (w *sharedWindow) Changed(dst []window.Change) []window.Change {
	if w.spec.Kind != window.Sum && w.spec.Kind != window.Distinct {
		return dst
	}
	if w.changed == nil {
		w.changed = make(map[string]struct{})
	}
	w.takeNews()
	if len(w.changed) == 0 {
		return dst
	}
	peek, _ := w.local.(peeker)
	for k := range w.changed {
		delete(w.changed, k)
		if peek == nil {
			continue
		}
		w.scratch = append(w.scratch[:0], k...)
		w.mu.Lock()
		r, ok := peek.Peek(w.scratch)
		w.mu.Unlock()
		if !ok {
			continue
		}
		switch w.spec.Kind {
		case window.Sum:
			r = w.withRemoteSum(w.scratch, r)
		case window.Distinct:
			r = w.withRemoteDist(w.scratch, r)
		}
		dst = append(dst, window.Change{Key: k, Result: r})
	}
	return dst
}

// noteRise records e's key as changed when its answer raises the other
// instances' part of it at the window's clock. Called by takeNews before
// the answer replaces the one held, only once Changed has been called.
func (w *sharedWindow) noteRise(e *remoteEntry) {
	if e.zero {
		return
	}
	var before, after float64
	switch w.spec.Kind {
	case window.Sum:
		before, after = w.sumAt(w.remoteSum[e.key]), w.sumAt(e.sum)
	case window.Distinct:
		old, held := w.remoteDist[e.key]
		if held {
			before = w.distAt(old)
		}
		after = w.distAt(e.dist)
	default:
		return
	}
	if after <= before {
		return
	}
	if _, ok := w.changed[e.key]; ok {
		return
	}
	if len(w.changed) >= w.store.cfg.ExchangeMaxKeys {
		w.store.stats.exchangeDropped.Add(1)
		return
	}
	w.changed[e.key] = struct{}{}
}

// sumAt is the other instances' part of a Sum key in the live buckets.
func (w *sharedWindow) sumAt(rs sumRemote) float64 {
	lo, hi := w.geo.live(w.clock)
	var v float64
	for i, x := range rs.vals {
		if s := rs.lo + int64(i); s >= lo && s <= hi {
			v += x
		}
	}
	return v
}

// distAt is the other instances' part of a Distinct key at the clock.
func (w *sharedWindow) distAt(rd distRemote) float64 {
	switch lo, _ := w.geo.live(w.clock); lo {
	case rd.lo:
		return rd.cur
	case rd.lo + 1:
		return rd.next
	}
	return 0
}

// withRemoteSum adds to r, key's local Result, the other instances' part
// of a Sum key as of the last flush; First moves back to the start of the
// earliest live bucket they wrote to.
func (w *sharedWindow) withRemoteSum(key []byte, r window.Result) window.Result {
	if len(w.remoteSum) == 0 {
		return r
	}
	rs, ok := w.remoteSum[string(key)]
	if !ok {
		return r
	}
	lo, hi := w.geo.live(w.clock)
	for i, x := range rs.vals {
		s := rs.lo + int64(i)
		if s < lo || s > hi || x == 0 {
			continue
		}
		if first := max(s*w.geo.width, w.clock-w.geo.size+1); r.Value == 0 || first < r.First {
			r.First = first
		}
		r.Value += x
	}
	return r
}

// withRemoteDist adds to r, key's local Result, the distinct items other
// instances hold for a Distinct key and this one had not sent.
func (w *sharedWindow) withRemoteDist(key []byte, r window.Result) window.Result {
	if len(w.remoteDist) == 0 {
		return r
	}
	if rd, ok := w.remoteDist[string(key)]; ok {
		r.Value += w.distAt(rd)
	}
	return r
}
