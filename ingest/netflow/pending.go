package netflow

import (
	"sync/atomic"

	"github.com/flowguard/flowguard/flow"
)

// pendingSet is a data set held until its template arrives.
type pendingSet struct {
	e    *exporter
	s    *versionStats
	key  domainKey
	id   uint16
	h    header
	data []byte
}

// pendingQueue holds data sets that arrived before their template, oldest
// first, bounded in count and bytes.
type pendingQueue struct {
	max     int
	items   []pendingSet
	bytes   int
	waiting int          // len(items), read on the hot path
	held    atomic.Int64 // len(items), for Stats
	free    [][]byte     // buffers of replayed sets, for reuse
}

func (q *pendingQueue) publish() {
	q.waiting = len(q.items)
	q.held.Store(int64(len(q.items)))
}

// hold keeps a copy of a data set whose template is unknown.
func (d *Decoder) hold(e *exporter, s *versionStats, key domainKey, id uint16, h *header, set []byte) {
	q := &d.pending
	if q.max == 0 || len(set) > pendingBytesMax {
		s.pendingDropped.Add(1)
		return
	}
	for len(q.items) > 0 && (len(q.items) >= q.max || q.bytes+len(set) > pendingBytesMax) {
		q.drop(0)
	}
	var buf []byte
	if n := len(q.free); n > 0 {
		buf, q.free = q.free[n-1][:0], q.free[:n-1]
	}
	q.items = append(q.items, pendingSet{e: e, s: s, key: key, id: id, h: *h, data: append(buf, set...)})
	q.bytes += len(set)
	q.publish()
}

// drop removes item i, counting it as dropped.
func (q *pendingQueue) drop(i int) {
	q.items[i].s.pendingDropped.Add(1)
	q.remove(i)
}

func (q *pendingQueue) remove(i int) {
	q.bytes -= len(q.items[i].data)
	if cap(q.items[i].data) <= 64<<10 && len(q.free) < 64 {
		q.free = append(q.free, q.items[i].data)
	}
	copy(q.items[i:], q.items[i+1:])
	q.items[len(q.items)-1] = pendingSet{}
	q.items = q.items[:len(q.items)-1]
	q.publish()
}

// expire drops the sets received before limit (Unix ns).
func (q *pendingQueue) expire(limit int64) {
	for i := 0; i < len(q.items); {
		if q.items[i].h.nowNs < limit {
			q.drop(i)
			continue
		}
		i++
	}
}

// replay decodes the held data sets of template id, now that it came.
func (d *Decoder) replay(e *exporter, key domainKey, dm *domain, id uint16, t *template, out []flow.Flow) []flow.Flow {
	q := &d.pending
	for i := 0; i < len(q.items); {
		p := &q.items[i]
		if p.e != e || p.key != key || p.id != id {
			i++
			continue
		}
		var err error
		out, _, err = d.dataSet(e, dm, t, &p.h, p.data, out)
		if err != nil {
			p.s.errors.Add(1)
		}
		q.remove(i)
	}
	return out
}
