package rediswindow

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flowguard/flowguard/engine/window"
)

// maxPipeline and maxPipelineDeltas bound the commands, and the deltas
// they carry, written before their replies are read: a burst of new groups
// or items is sent in several pipelines, each answered well within
// ReadTimeout, rather than buffered whole.
const (
	maxPipeline       = 1000
	maxPipelineDeltas = 20000
)

// topKeep is how many members each bucket's zsets keep, in multiples of
// the window's TopCapacity: deeper than the sketch, so that trimming
// rarely drops a member that would make the merged top.
const topKeep = 4

// flushCmd is one script call of a flush and what to do with its reply.
type flushCmd struct {
	script  *redis.Script
	keys    []string
	args    []any
	entries int64 // deltas it carries
	cmd     *redis.Cmd
	parse   func(reply any) error
}

// reply gathers a window's answers during a flush.
type reply struct {
	w       *sharedWindow
	b       *batch
	entries []remoteEntry
	top     *topSnapshot
}

// flush takes every window's pending batch, sends it in pipelined script
// calls and hands the answers to the windows. An error that is not a
// server's reply means Redis is unreachable: what was not sent is lost
// (and counted).
func (s *Store) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	start := time.Now()
	s.mu.Lock()
	wins := make([]*sharedWindow, 0, len(s.windows))
	for _, w := range s.windows {
		wins = append(wins, w)
	}
	s.mu.Unlock()

	var (
		replies []*reply
		cmds    []*flushCmd
	)
	for _, w := range wins {
		b := w.take()
		if b == nil {
			continue
		}
		s.pending.Add(-b.entries)
		s.stats.updates.Add(b.updates)
		r := &reply{w: w, b: b}
		replies = append(replies, r)
		switch w.spec.Kind {
		case window.Sum:
			cmds = s.sumCmds(cmds, r)
		case window.Distinct:
			cmds = s.distinctCmds(cmds, r)
		case window.Top:
			cmds = append(cmds, s.topCmd(r))
		}
	}
	defer func() {
		for _, r := range replies {
			r.w.giveBack(r.b)
		}
	}()
	if len(cmds) == 0 {
		return nil
	}

	for i := 0; i < len(cmds); {
		j, deltas := i, int64(0)
		for j < len(cmds) && j-i < maxPipeline && (j == i || deltas+cmds[j].entries <= maxPipelineDeltas) {
			deltas += cmds[j].entries
			j++
		}
		if err := s.exec(ctx, cmds[i:j]); err != nil {
			for _, c := range cmds[i:] {
				s.stats.lost.Add(uint64(c.entries))
			}
			return err
		}
		i = j
	}
	for _, r := range replies {
		r.w.deliver(r.entries, r.top)
	}
	s.stats.flushes.Add(1)
	s.stats.lastFlush.Store(int64(time.Since(start)))
	return nil
}

// exec sends a chunk of script calls in one pipeline, then once more with
// EVAL those that met NOSCRIPT. It returns an error only when Redis could
// not be reached; failed commands are counted and their deltas lost.
func (s *Store) exec(ctx context.Context, chunk []*flushCmd) error {
	pipe := s.client.Pipeline()
	for _, c := range chunk {
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	s.stats.commands.Add(uint64(len(chunk)))
	var retry []*flushCmd
	for _, c := range chunk {
		err := c.cmd.Err()
		switch {
		case err == nil:
			s.settle(c)
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			retry = append(retry, c)
		case isRedisError(err):
			s.failed(c, err)
		default:
			return err
		}
	}
	if len(retry) == 0 {
		return nil
	}
	s.stats.scriptLoads.Add(1)
	pipe = s.client.Pipeline()
	for _, c := range retry {
		c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	s.stats.commands.Add(uint64(len(retry)))
	for _, c := range retry {
		err := c.cmd.Err()
		switch {
		case err == nil:
			s.settle(c)
		case isRedisError(err):
			s.failed(c, err)
		default:
			return err
		}
	}
	return nil
}

func (s *Store) settle(c *flushCmd) {
	s.stats.sent.Add(uint64(c.entries))
	if err := c.parse(c.cmd.Val()); err != nil {
		s.failed(c, err)
	}
}

// failed counts a command the server refused. Such errors repeat with
// every flush (a key of the wrong type, a script the server cannot run),
// so only the first is logged.
func (s *Store) failed(c *flushCmd, err error) {
	if s.stats.flushErrors.Add(1) == 1 {
		s.log.Warn("redis refused a flush command; its deltas are lost", "err", err, "key", c.keys[0])
	}
	s.stats.lost.Add(uint64(c.entries))
}

// sumCmds makes a call of sumScript per group of a Sum window's batch.
func (s *Store) sumCmds(cmds []*flushCmd, r *reply) []*flushCmd {
	w, b := r.w, r.b
	lo, hi := w.geo.live(b.clock)
	ttl := w.ttl().Milliseconds()
	ring := hi - lo + 1
	for _, g := range b.groups {
		args := make([]any, 3, 3+2*len(g.sums))
		args[0], args[1], args[2] = s.inst, ttl, lo
		for _, d := range g.sums {
			if d.seq >= lo && d.v != 0 {
				args = append(args, d.seq, d.v)
			}
		}
		key := g.key
		cmds = append(cmds, &flushCmd{
			script: sumScript, keys: []string{"{" + w.base + "|" + key + "}"}, args: args, entries: 1,
			parse: func(v any) error {
				vals, ok := v.([]any)
				if !ok || len(vals)%3 != 0 {
					return fmt.Errorf("sum script: unexpected reply %T", v)
				}
				var sr sumRemote
				for j := 0; j < len(vals); j += 3 {
					seq := int64(parseFloat(vals[j]))
					x := parseFloat(vals[j+1]) - parseFloat(vals[j+2])
					if x == 0 || seq < lo || seq >= lo+2*ring {
						continue
					}
					if sr.vals == nil {
						sr = sumRemote{lo: lo, vals: make([]float64, ring)}
					}
					for int64(len(sr.vals)) <= seq-lo {
						sr.vals = append(sr.vals, 0)
					}
					sr.vals[seq-lo] += x
				}
				r.add(key, sr.vals != nil, remoteEntry{key: key, sum: sr})
				return nil
			},
		})
	}
	return cmds
}

// distinctCmds makes a call of distinctScript per group of a Distinct
// window's batch.
func (s *Store) distinctCmds(cmds []*flushCmd, r *reply) []*flushCmd {
	w, b := r.w, r.b
	lo, hi := w.geo.live(b.clock)
	n := int(hi - lo + 1)
	ttl := w.ttl().Milliseconds()
	for _, g := range b.groups {
		tag := "{" + w.base + "|" + g.key + "}:"
		keys := make([]string, n, n+1)
		perSeq := make([][]uint64, n)
		entries := int64(1)
		for i := range g.items {
			e := &g.items[i]
			entries += int64(len(e.items))
			if e.seq < lo || e.seq > hi {
				continue
			}
			slices.Sort(e.items)
			perSeq[e.seq-lo] = slices.Compact(e.items)
		}
		args := make([]any, 4, 4+n)
		args[0], args[1], args[2], args[3] = ttl, s.inst, lo, hi
		for i := range n {
			keys[i] = tag + strconv.FormatInt(lo+int64(i), 10) + ":" + s.inst
			packed := make([]byte, 0, 8*len(perSeq[i]))
			for _, it := range perSeq[i] {
				packed = binary.LittleEndian.AppendUint64(packed, it)
			}
			args = append(args, packed)
		}
		keys = append(keys, tag+"writers")
		key := g.key
		cmds = append(cmds, &flushCmd{
			script: distinctScript, keys: keys, args: args, entries: entries,
			parse: func(v any) error {
				vals, ok := v.([]any)
				if !ok || len(vals) != 2 {
					return fmt.Errorf("distinct script: unexpected reply %T", v)
				}
				d := distRemote{lo: lo, cur: max(0, parseFloat(vals[0])), next: max(0, parseFloat(vals[1]))}
				r.add(key, d.cur != 0 || d.next != 0, remoteEntry{key: key, dist: d})
				return nil
			},
		})
	}
	return cmds
}

// topCmd makes the one call of topScript for a Top window's batch.
func (s *Store) topCmd(r *reply) *flushCmd {
	w, b := r.w, r.b
	lo, hi := w.geo.live(b.clock)
	n := int(hi - lo + 1)
	type delta struct {
		member string
		v      float64
	}
	perSeq := make([][]delta, n)
	totals := make([]float64, n)
	entries := int64(0)
	for _, g := range b.groups {
		entries++
		for _, d := range g.sums {
			if d.seq >= lo && d.seq <= hi && d.v != 0 {
				perSeq[d.seq-lo] = append(perSeq[d.seq-lo], delta{g.key, d.v})
				totals[d.seq-lo] += d.v
			}
		}
	}
	tag := "{" + w.base + "}:"
	keys := make([]string, 0, 3*n+2)
	args := []any{s.inst, w.ttl().Milliseconds(), w.spec.TopCapacity, topKeep * w.spec.TopCapacity}
	for i := range n {
		seq := tag + strconv.FormatInt(lo+int64(i), 10)
		keys = append(keys, seq, seq+":"+s.inst, seq+":total")
		args = append(args, len(perSeq[i]))
		for _, d := range perSeq[i] {
			args = append(args, d.member, d.v)
		}
		if totals[i] != 0 {
			args = append(args, totals[i])
		} else {
			args = append(args, "")
		}
	}
	keys = append(keys, tag+"tmp:"+s.inst+":a", tag+"tmp:"+s.inst+":m")
	return &flushCmd{
		script: topScript, keys: keys, args: args, entries: entries,
		parse: func(v any) error {
			vals, ok := v.([]any)
			if !ok || len(vals) < 2*n || (len(vals)-2*n)%3 != 0 {
				return fmt.Errorf("top script: unexpected reply %T", v)
			}
			snap := &topSnapshot{lo: lo, others: make(map[string]float64)}
			for i := range n {
				snap.othersTotal += parseFloat(vals[2*i]) - parseFloat(vals[2*i+1])
			}
			for j := 2 * n; j < len(vals); j += 3 {
				m, _ := vals[j].(string)
				all := parseFloat(vals[j+1])
				snap.all = append(snap.all, scored{m, all})
				if o := all - parseFloat(vals[j+2]); o != 0 {
					snap.others[m] = o
				}
			}
			snap.hasOthers = snap.othersTotal != 0 || len(snap.others) > 0
			r.top = snap
			return nil
		},
	}
}

// add records a group's answer. Answers of nothing from the others are
// passed on only for groups that had something before, so that a store
// used alone hands nothing to its windows.
func (r *reply) add(key string, nonzero bool, e remoteEntry) {
	known := r.w.known
	if nonzero {
		if len(known) >= 2*r.w.spec.MaxKeys {
			clear(known) // stale answers slide out of the window by themselves
		}
		known[key] = struct{}{}
		r.entries = append(r.entries, e)
		return
	}
	if _, ok := known[key]; ok {
		delete(known, key)
		r.entries = append(r.entries, remoteEntry{key: key, zero: true})
	}
}

// parseFloat reads a number from a script's reply: a bulk string (the
// HINCRBYFLOAT and ZSCORE values), an integer, or nil for nothing.
func parseFloat(v any) float64 {
	switch x := v.(type) {
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}
