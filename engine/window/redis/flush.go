package rediswindow

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
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
	bytes   int64 // size of its keys and arguments
	cmd     *redis.Cmd
	parse   func(reply any) error
	done    bool // answered (or refused) and accounted for
	// The groups the call carries, when it carries several (Sum,
	// Distinct): a refused call leaves their others' part as it was.
	r    *reply
	part []int32
}

// reply gathers a window's answers during a flush.
type reply struct {
	w       *sharedWindow
	b       *batch
	carried []int32             // groups sent (Sum, Distinct)
	nonzero map[string]struct{} // carried groups answered with the others' part
	entries []remoteEntry
	top     *topSnapshot
}

// sent records the groups a flush carries for the window.
func (r *reply) sent(sel []int32) { r.carried = sel }

// keep leaves group i's others' part as it was: its call failed.
func (r *reply) keep(i int32) {
	if r.nonzero == nil {
		r.nonzero = make(map[string]struct{})
	}
	r.nonzero[string(r.b.key(i))] = struct{}{}
}

// settle passes on, after the window's calls were answered, a zero answer
// for the carried groups that had the others' part before and were not
// answered with one now: the others' part of them is gone.
func (r *reply) settle() {
	known := r.w.known
	if len(known) == 0 {
		return
	}
	for _, i := range r.carried {
		key := r.b.key(i)
		if _, ok := r.nonzero[string(key)]; ok {
			continue
		}
		if _, ok := known[string(key)]; ok {
			delete(known, string(key))
			r.entries = append(r.entries, remoteEntry{key: string(key), zero: true})
		}
	}
}

// flush takes every window's pending batch, sends it in pipelined script
// calls and hands the answers to the windows. An error that is not a
// server's reply means Redis is unreachable: what was not sent goes back
// to the windows' pending batches (up to MaxPending, past it counted in
// Dropped), to go with the next flush.
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
	if err := s.sync(ctx, wins); err != nil {
		return err // nothing was taken: the deltas wait for the next flush
	}

	replies, cmds := s.takeAll(wins)
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
			s.requeue(cmds[i:j], cmds[j:])
			return err
		}
		i = j
	}
	for _, r := range replies {
		r.settle()
		r.w.deliver(r.entries, r.top)
	}
	s.stats.flushes.Add(1)
	s.stats.lastFlush.Store(int64(time.Since(start)))
	return nil
}

// takeAll takes the windows' pending batches and makes their calls. The
// flusher owns the batches until it gives them back (giveBack).
func (s *Store) takeAll(wins []*sharedWindow) (replies []*reply, cmds []*flushCmd) {
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
			cmds = s.hotCmds(s.sumCmds(cmds, r), r)
		case window.Distinct:
			cmds = s.hotCmds(s.distinctCmds(cmds, r), r)
		case window.Top:
			cmds = s.hotCmds(append(cmds, s.topCmd(r)), r)
		}
	}
	return replies, cmds
}

// requeue puts back in the windows' pending batches the deltas of a flush
// that lost Redis: those of the calls never sent (unsent), and of the
// calls of the failed pipeline (failed) that did not run (a server's
// error, NOSCRIPT) or got no reply and that Redis may run twice without
// harm (Distinct: PFADD). A Sum or Top call without a reply may have run:
// sent again it could count twice, so its deltas are counted in Lost
// instead (and logged once). The calls accounted for (answered, refused)
// are done.
func (s *Store) requeue(failed, unsent []*flushCmd) {
	unsent = slices.Clip(unsent) // its own array from the first append
	for _, c := range failed {
		switch {
		case c.done || c.script == hotScript: // a hot-set name goes again with its group
		case c.cmd == nil || isRedisError(c.cmd.Err()) || c.script == distinctScript:
			unsent = append(unsent, c)
		default:
			if s.stats.lost.Add(uint64(c.entries)) == uint64(c.entries) {
				s.log.Warn("redis did not answer a flush command that may have run; its deltas are not sent again", "key", c.keys[0])
			}
		}
	}
	for _, c := range unsent {
		switch c.script {
		case sumScript, distinctScript:
			c.r.w.requeue(c.r.b, c.part, false)
		case topScript:
			c.r.w.requeue(c.r.b, nil, true)
		}
	}
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
	for _, c := range chunk {
		s.stats.bytes.Add(uint64(c.bytes))
	}
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
		s.stats.bytes.Add(uint64(c.bytes))
	}
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
	c.done = true
	s.stats.sent.Add(uint64(c.entries))
	if err := c.parse(c.cmd.Val()); err != nil {
		s.failed(c, err)
	}
}

// failed counts a command the server refused. Such errors repeat with
// every flush (a key of the wrong type, a script the server cannot run),
// so only the first is logged.
func (s *Store) failed(c *flushCmd, err error) {
	c.done = true
	if s.stats.flushErrors.Add(1) == 1 {
		s.log.Warn("redis refused a flush command; its deltas are lost", "err", err, "key", c.keys[0])
	}
	s.stats.lost.Add(uint64(c.entries))
	if c.r != nil {
		for _, i := range c.part {
			c.r.keep(i)
		}
	}
}

// Calls of the Sum and Distinct scripts carry at most maxCallGroups
// groups and, past its first group, maxCallDeltas deltas: one call runs
// in Redis without a break, and must stay short.
const (
	maxCallGroups = 256
	maxCallDeltas = 4096
)

// shards is how many hash tags a window's groups are spread over:
// "{<window>#<shard>}". Every key of a group has its shard's tag, so the
// groups of a shard share a Cluster slot and go in the same script calls;
// a window's keys still spread over as many slots. Every instance must
// use the same value.
const shards = 64

// shardOf is key's shard: FNV-1a, the same in every process.
func shardOf(key []byte) int {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % shards)
}

// groupTag returns the hash tag of key's shard in window base, then '|'.
func groupTag(dst []byte, base string, key []byte) []byte {
	dst = append(dst, '{')
	dst = append(dst, base...)
	dst = append(dst, '#')
	dst = strconv.AppendInt(dst, int64(shardOf(key)), 10)
	return append(dst, "}|"...)
}

// liveGroups returns the batch's groups that wrote to a bucket still live
// at lo, ordered by shard on a Cluster (so that a call's keys share a
// slot), with their shards. A group whose updates have all left the window
// since is not sent: nothing of it would count, anywhere.
func (s *Store) liveGroups(b *batch, lo int64) (sel []int32, shard []int) {
	for i := range int32(b.n) {
		if b.groups[i].newest >= lo {
			sel = append(sel, i)
		}
	}
	if !s.cluster {
		return sel, nil
	}
	shard = make([]int, b.n)
	for _, i := range sel {
		shard[i] = shardOf(b.key(i))
	}
	slices.SortStableFunc(sel, func(x, y int32) int { return shard[x] - shard[y] })
	return sel, shard
}

// chunks cuts sel into the groups of successive calls: the same shard on a
// Cluster, at most maxCallGroups groups and maxCallDeltas deltas.
func chunks(sel []int32, shard []int, deltas func(int32) int, yield func([]int32)) {
	for len(sel) > 0 {
		n, d := 1, deltas(sel[0])
		for n < len(sel) && n < maxCallGroups {
			if shard != nil && shard[sel[n]] != shard[sel[0]] {
				break
			}
			if d += deltas(sel[n]); d > maxCallDeltas {
				break
			}
			n++
		}
		yield(sel[:n])
		sel = sel[n:]
	}
}

// sumCmds makes the calls of sumScript for a Sum window's batch.
func (s *Store) sumCmds(cmds []*flushCmd, r *reply) []*flushCmd {
	w, b := r.w, r.b
	lo, hi := w.geo.live(b.clock)
	ttl := w.ttl().Milliseconds()
	ring := hi - lo + 1
	maxFields := 4*ring + 1
	sel, shard := s.liveGroups(b, lo)
	r.sent(sel)
	deltas := func(i int32) int { return len(b.groups[i].sums) }
	var name []byte
	chunks(sel, shard, deltas, func(part []int32) {
		keys := make([]string, len(part))
		var blob []byte
		size := int64(len(s.inst) + 24)
		for j, i := range part {
			g := &b.groups[i]
			name = append(groupTag(name[:0], w.base, b.key(i)), b.key(i)...)
			keys[j] = string(name)
			size += int64(len(name))
			at := len(blob)
			blob = append(blob, 0, 0, 0, 0)
			n := uint32(0)
			for _, d := range g.sums {
				if d.seq >= lo && d.v != 0 {
					blob = binary.LittleEndian.AppendUint64(blob, uint64(d.seq))
					blob = binary.LittleEndian.AppendUint64(blob, math.Float64bits(d.v))
					n++
				}
			}
			binary.LittleEndian.PutUint32(blob[at:], n)
		}
		cmds = append(cmds, &flushCmd{
			script: sumScript, keys: keys, args: []any{s.inst, ttl, lo, maxFields, blob}, entries: int64(len(part)),
			bytes: size + int64(len(blob)),
			r:     r, part: part,
			parse: func(v any) error {
				vals, ok := v.([]any)
				if !ok || len(vals)%4 != 0 {
					return fmt.Errorf("sum script: unexpected reply %T", v)
				}
				got := make(map[int64]*sumRemote)
				for j := 0; j < len(vals); j += 4 {
					g, _ := vals[j].(int64)
					seq := int64(parseFloat(vals[j+1]))
					x := parseFloat(vals[j+2]) - parseFloat(vals[j+3])
					if g < 1 || g > int64(len(part)) || x == 0 || seq < lo || seq >= lo+2*ring {
						continue
					}
					sr := got[g]
					if sr == nil {
						sr = &sumRemote{lo: lo, vals: make([]float64, ring)}
						got[g] = sr
					}
					for int64(len(sr.vals)) <= seq-lo {
						sr.vals = append(sr.vals, 0)
					}
					sr.vals[seq-lo] += x
				}
				for g, sr := range got {
					key := string(b.key(part[g-1]))
					r.add(key, true, remoteEntry{key: key, sum: *sr})
				}
				return nil
			},
		})
	})
	return cmds
}

// distinctCmds makes the calls of distinctScript for a Distinct window's
// batch.
func (s *Store) distinctCmds(cmds []*flushCmd, r *reply) []*flushCmd {
	w, b := r.w, r.b
	lo, hi := w.geo.live(b.clock)
	ttl := w.ttl().Milliseconds()
	sel, shard := s.liveGroups(b, lo)
	r.sent(sel)
	deltas := func(i int32) int {
		n := 1
		for _, e := range b.groups[i].items {
			n += len(e.items)
		}
		return n
	}
	var name []byte
	chunks(sel, shard, deltas, func(part []int32) {
		keys := make([]string, len(part))
		var blob []byte
		entries := int64(0)
		size := int64(len(s.inst) + 24)
		for j, i := range part {
			g := &b.groups[i]
			entries += int64(deltas(i))
			name = append(groupTag(name[:0], w.base, b.key(i)), b.key(i)...)
			keys[j] = string(append(name, ":writers"...))
			size += int64(len(keys[j]))
			at := len(blob)
			blob = append(blob, 0, 0, 0, 0)
			nb := uint32(0)
			for k := range g.items {
				e := &g.items[k]
				if e.seq < lo || e.seq > hi || len(e.items) == 0 {
					continue
				}
				slices.Sort(e.items)
				e.items = slices.Compact(e.items)
				blob = binary.LittleEndian.AppendUint64(blob, uint64(e.seq))
				blob = binary.LittleEndian.AppendUint32(blob, uint32(len(e.items)))
				for _, it := range e.items {
					blob = binary.LittleEndian.AppendUint64(blob, it)
				}
				nb++
			}
			binary.LittleEndian.PutUint32(blob[at:], nb)
		}
		cmds = append(cmds, &flushCmd{
			script: distinctScript, keys: keys, args: []any{ttl, s.inst, lo, hi, blob}, entries: entries,
			bytes: size + int64(len(blob)),
			r:     r, part: part,
			parse: func(v any) error {
				vals, ok := v.([]any)
				if !ok || len(vals)%3 != 0 {
					return fmt.Errorf("distinct script: unexpected reply %T", v)
				}
				for j := 0; j < len(vals); j += 3 {
					g, _ := vals[j].(int64)
					if g < 1 || g > int64(len(part)) {
						continue
					}
					d := distRemote{lo: lo, cur: max(0, parseFloat(vals[j+1])), next: max(0, parseFloat(vals[j+2]))}
					key := string(b.key(part[g-1]))
					r.add(key, d.cur != 0 || d.next != 0, remoteEntry{key: key, dist: d})
				}
				return nil
			},
		})
	})
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
	sel := make([]int32, b.n)
	for i := range int32(b.n) {
		sel[i] = i
		g := &b.groups[i]
		entries++
		for _, d := range g.sums {
			if d.seq >= lo && d.seq <= hi && d.v != 0 {
				perSeq[d.seq-lo] = append(perSeq[d.seq-lo], delta{string(b.key(i)), d.v})
			}
		}
	}
	r.sent(sel)
	for _, d := range b.totals { // every update's, the held groups' too
		if d.seq >= lo && d.seq <= hi {
			totals[d.seq-lo] += d.v
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
	size := int64(0)
	for _, k := range keys {
		size += int64(len(k))
	}
	for _, a := range args {
		if m, ok := a.(string); ok {
			size += int64(len(m))
		} else {
			size += 8
		}
	}
	return &flushCmd{
		script: topScript, keys: keys, args: args, entries: entries, bytes: size, r: r,
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

// add records a group's answer with the others' part. Answers of nothing
// from the others are passed on (by settle) only for groups that had
// something before, so that a store used alone hands nothing to its
// windows.
func (r *reply) add(key string, nonzero bool, e remoteEntry) {
	if !nonzero {
		return
	}
	known := r.w.known
	if len(known) >= 2*r.w.spec.MaxKeys {
		clear(known) // stale answers slide out of the window by themselves
	}
	known[key] = struct{}{}
	if r.nonzero == nil {
		r.nonzero = make(map[string]struct{})
	}
	r.nonzero[key] = struct{}{}
	r.entries = append(r.entries, e)
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
