package console

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowguard/flowguard/alert"
)

// Event is a change of an alert: "firing", "escalated", "resolved" or
// "silenced".
type Event struct {
	Kind  string
	Alert *alert.Alert
}

// AlertSource is what feeds the event stream: something that calls fn on
// every change of an alert (the alert state tracker).
type AlertSource interface {
	Observe(fn func(Event))
}

// Stream defaults.
const (
	DefaultMaxStreams = 16
	PingEvery         = 15 * time.Second
	// streamBuffer is how many events a stream may lag behind; a client
	// further behind is dropped, never waited for.
	streamBuffer = 64
	// writeWait is how long one write to a client may take.
	writeWait = 10 * time.Second
)

// Hub fans alert events out to server-sent event streams. Publish never
// blocks: a stream whose buffer is full is closed and counted.
type Hub struct {
	mu      sync.Mutex
	subs    map[*stream]struct{}
	max     int
	ping    time.Duration
	closed  bool
	sent    atomic.Uint64
	dropped atomic.Uint64
	refused atomic.Uint64
}

type stream struct {
	ch   chan []byte
	gone chan struct{} // closed when dropped for lagging
}

// NewHub returns a hub serving at most maxStreams streams at once (0:
// DefaultMaxStreams).
func NewHub(maxStreams int) *Hub {
	if maxStreams <= 0 {
		maxStreams = DefaultMaxStreams
	}
	return &Hub{subs: map[*stream]struct{}{}, max: maxStreams, ping: PingEvery}
}

// Observe subscribes the hub to src.
func (h *Hub) Observe(src AlertSource) { src.Observe(h.Publish) }

// Publish sends ev to every stream as an "alert" event whose data is the
// alert's JSON. The alert is encoded before Publish returns.
func (h *Hub) Publish(ev Event) {
	if ev.Alert == nil {
		return
	}
	data, err := json.Marshal(ev.Alert)
	if err != nil {
		return
	}
	msg := make([]byte, 0, len(data)+32)
	msg = append(msg, "event: alert\ndata: "...)
	msg = append(msg, data...) // compact JSON holds no newline
	msg = append(msg, "\n\n"...)
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- msg:
		default:
			delete(h.subs, s)
			close(s.gone)
			h.dropped.Add(1)
		}
	}
}

// HubStats are the hub's counters.
type HubStats struct {
	Streams int    // open now
	Sent    uint64 // events written
	Dropped uint64 // streams closed for lagging or failing writes
	Refused uint64 // streams refused at the limit
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	n := len(h.subs)
	h.mu.Unlock()
	return HubStats{Streams: n, Sent: h.sent.Load(), Dropped: h.dropped.Load(), Refused: h.refused.Load()}
}

// Close ends every open stream and refuses new ones (the server is
// shutting down).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.gone)
	}
}

func (h *Hub) join() *stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= h.max {
		return nil
	}
	s := &stream{ch: make(chan []byte, streamBuffer), gone: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s
}

func (h *Hub) leave(s *stream) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// ServeHTTP serves GET /api/events: a text/event-stream of "alert" events
// and a ": ping" comment every 15 seconds.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.join()
	if s == nil {
		h.refused.Add(1)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	defer h.leave(s)
	rc := http.NewResponseController(w)
	// The stream outlives the server's read and write timeouts: no read
	// deadline (the request is read), a write deadline per write.
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": flowguard alert events\nretry: 2000\n\n")) {
		return
	}
	ping := time.NewTicker(h.ping)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.gone:
			return
		case <-ping.C:
			if !write([]byte(": ping\n\n")) {
				h.dropped.Add(1)
				return
			}
		case msg := <-s.ch:
			if !write(msg) {
				h.dropped.Add(1)
				return
			}
			h.sent.Add(1)
		}
	}
}
