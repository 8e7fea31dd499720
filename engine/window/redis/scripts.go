package rediswindow

import "github.com/redis/go-redis/v9"

// The Lua scripts below run a flush's share of a window in one round trip
// and atomically. Every key a script touches is passed in KEYS and shares
// the caller's hash tag, so each call lands on one Cluster slot. They are
// loaded (SCRIPT LOAD) when the store connects and again after every
// reconnection; a call that still meets NOSCRIPT (a server restarted
// between two flushes, a failover) is sent again with EVAL, which caches
// the script once more.
//
// The part each instance (ARGV inst, random per Store) added is kept
// apart from the total over every instance (sums, top), or instead of it
// (distinct HLLs, merged when read). What the other instances contributed
// is the difference, worked out from two values built by the same
// operations in the same order; so an instance alone sees exactly zero
// from the others, and its answers are exactly those of its local window.

// The Sum and Distinct scripts take many groups per call: all the groups
// of one window in a chunk (standalone), or those of one shard (Cluster:
// their keys share the shard's hash tag, so one slot). A call's deltas
// come packed in one binary argument, read with struct.unpack: per group
// a count, then per bucket the bucket's seq (int64) and its sum (a
// double) or its items (8 bytes each). Sums are written with %.17g, which
// gives back the double exactly.

// sumScript adds the groups' per-bucket deltas of a Sum window and reads
// back what the other instances added to each.
//
// KEYS: the groups' hashes, with fields "<seq>:a" (every instance),
// "<seq>:<inst>" (instance inst) per bucket seq, and "o": inst when inst
// is the only instance with fields in live buckets, "*" otherwise.
// ARGV: inst, ttl in ms, lo (oldest live bucket), the field count past
// which dead fields are swept, then the packed deltas: per group an int32
// count n, then n pairs of int64 seq and double delta.
// While "o" is inst the group's others' part is zero and nothing is read
// back; else the hash is read, fields of buckets before lo are deleted,
// "o" goes back to inst when no other instance has live fields, and the
// reply lists quadruples group index (1-based), seq, "a", inst for the
// buckets where the two differ. Alone, the reply is empty.
var sumScript = redis.NewScript(`
local inst, ttl, lo, maxf = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local blob, pos = ARGV[5], 1
local out = {}
for g = 1, #KEYS do
  local k = KEYS[g]
  local n
  n, pos = struct.unpack('<i4', blob, pos)
  for i = 1, n do
    local seq, v
    seq, v, pos = struct.unpack('<i8d', blob, pos)
    seq, v = string.format('%d', seq), string.format('%.17g', v)
    redis.call('HINCRBYFLOAT', k, seq .. ':a', v)
    redis.call('HINCRBYFLOAT', k, seq .. ':' .. inst, v)
  end
  local o = redis.call('HGET', k, 'o')
  if n > 0 then
    redis.call('PEXPIRE', k, ttl)
    if not o then
      o = inst
      redis.call('HSET', k, 'o', o)
    elseif o ~= inst and o ~= '*' then
      o = '*'
      redis.call('HSET', k, 'o', o)
    end
  end
  if o and (o ~= inst or redis.call('HLEN', k) > maxf) then
    local f = redis.call('HGETALL', k)
    local a, m, dead, others = {}, {}, {}, false
    for j = 1, #f, 2 do
      local seq, who = string.match(f[j], '^(%-?%d+):(%w+)$')
      if seq then
        if tonumber(seq) < lo then
          dead[#dead + 1] = f[j]
        elseif who == 'a' then
          a[seq] = f[j + 1]
        elseif who == inst then
          m[seq] = f[j + 1]
        else
          others = true
        end
      end
    end
    if #dead > 0 then
      redis.call('HDEL', k, unpack(dead))
    end
    if not others and o ~= inst and next(m) then
      redis.call('HSET', k, 'o', inst)
    end
    for seq, v in pairs(a) do
      if v ~= m[seq] then
        out[#out + 1] = g
        out[#out + 1] = seq
        out[#out + 1] = v
        out[#out + 1] = m[seq] or '0'
      end
    end
  end
end
return out
`)

// distinctScript adds the groups' items of a Distinct window to this
// instance's per-bucket HyperLogLogs and counts what the other instances
// add to them.
//
// KEYS: the groups' writers hashes ("<stem>writers": instance → newest
// bucket it wrote); a group's HLL for bucket seq of instance inst is
// "<stem><seq>:<inst>", named from it (same tag, same slot).
// ARGV: ttl in ms, inst, lo, hi, then the packed items: per group an
// int32 count of buckets, then per bucket its int64 seq, an int32 count of
// items and the items, 8 bytes each.
// Returns triples group index (1-based), all - mine over lo..hi, all -
// mine over lo+1..hi, where all merges every writer's HLLs: the distinct
// items of other instances that this one has not sent, over the window now
// and once its oldest bucket has left. Merging HLLs costs tens of
// microseconds, so it is done only for groups that another instance wrote
// to in the live buckets; alone, the reply is empty.
var distinctScript = redis.NewScript(`
local ttl, inst, lo, hi = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local blob, pos = ARGV[5], 1
local out = {}
for g = 1, #KEYS do
  local wk = KEYS[g]
  local stem = string.sub(wk, 1, #wk - 7)
  local nb
  nb, pos = struct.unpack('<i4', blob, pos)
  for b = 1, nb do
    local seq, n
    seq, n, pos = struct.unpack('<i8i4', blob, pos)
    local k = stem .. string.format('%d', seq) .. ':' .. inst
    local t = {}
    for j = 1, n do
      t[#t + 1] = string.sub(blob, pos, pos + 7)
      pos = pos + 8
      if #t == 4000 or j == n then
        redis.call('PFADD', k, unpack(t))
        t = {}
      end
    end
    redis.call('PEXPIRE', k, ttl)
  end
  redis.call('HSET', wk, inst, hi)
  redis.call('PEXPIRE', wk, ttl)
  local others = {}
  local ws = redis.call('HGETALL', wk)
  for j = 1, #ws, 2 do
    if tonumber(ws[j + 1]) < lo then
      redis.call('HDEL', wk, ws[j])
    elseif ws[j] ~= inst then
      others[#others + 1] = ws[j]
    end
  end
  if #others > 0 then
    local function count(from)
      local all, mine = {}, {}
      for s = from, hi do
        local b = stem .. string.format('%d', s) .. ':'
        mine[#mine + 1] = b .. inst
        all[#all + 1] = b .. inst
        for _, o in ipairs(others) do
          all[#all + 1] = b .. o
        end
      end
      return redis.call('PFCOUNT', unpack(all)) - redis.call('PFCOUNT', unpack(mine))
    end
    local nxt = 0
    if hi > lo then
      nxt = count(lo + 1)
    end
    out[#out + 1] = g
    out[#out + 1] = count(lo)
    out[#out + 1] = nxt
  end
end
return out
`)

// topScript adds a Top window's per-bucket deltas to sorted sets and
// returns the window's heavy hitters over the live buckets.
//
// KEYS: per live bucket lo..hi: shared zset, this instance's zset, totals
// hash (fields "a" and inst); then two scratch keys.
// ARGV: inst, ttl in ms, capacity, keep, then per bucket: n, n pairs of
// member and delta, and the bucket's total delta ("" for none).
// Each bucket's zsets are trimmed to their keep largest members. Returns a
// flat array: per bucket the totals "a" and inst, then up to capacity
// triples member, score over every instance, score of this instance.
var topScript = redis.NewScript(`
local inst, ttl, cap, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nb = (#KEYS - 2) / 3
local tmpa, tmpm = KEYS[#KEYS - 1], KEYS[#KEYS]
local p = 5
local all, mine, out = {}, {}, {}
for i = 1, nb do
  local sk, mk, tk = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local c = tonumber(ARGV[p])
  p = p + 1
  for j = 1, c do
    redis.call('ZINCRBY', sk, ARGV[p + 1], ARGV[p])
    redis.call('ZINCRBY', mk, ARGV[p + 1], ARGV[p])
    p = p + 2
  end
  local t = ARGV[p]
  p = p + 1
  if t ~= '' then
    redis.call('HINCRBYFLOAT', tk, 'a', t)
    redis.call('HINCRBYFLOAT', tk, inst, t)
    redis.call('PEXPIRE', tk, ttl)
  end
  if c > 0 then
    redis.call('ZREMRANGEBYRANK', sk, 0, -keep - 1)
    redis.call('ZREMRANGEBYRANK', mk, 0, -keep - 1)
    redis.call('PEXPIRE', sk, ttl)
    redis.call('PEXPIRE', mk, ttl)
  end
  all[i], mine[i] = sk, mk
  local v = redis.call('HMGET', tk, 'a', inst)
  out[2 * i - 1] = v[1]
  out[2 * i] = v[2]
end
redis.call('ZUNIONSTORE', tmpa, nb, unpack(all))
redis.call('ZUNIONSTORE', tmpm, nb, unpack(mine))
local top = redis.call('ZREVRANGE', tmpa, 0, cap - 1, 'WITHSCORES')
local n = 2 * nb
for j = 1, #top, 2 do
  out[n + 1] = top[j]
  out[n + 2] = top[j + 1]
  out[n + 3] = redis.call('ZSCORE', tmpm, top[j])
  n = n + 3
end
redis.call('DEL', tmpa, tmpm)
return out
`)

// claimScript claims a suppression key at an event time, unless a claim
// within ttl of it (before or after) holds it.
//
// KEYS: the claim key. ARGV: event time as seconds and nanoseconds (the
// two parts keep Lua's doubles exact), ttl in ns, expiry in ms.
// The key holds "seconds nanoseconds" of the latest successful claim and
// expires, in wall time, well after its ttl in event time.
// Returns 1 when claimed, 0 when held.
var claimScript = redis.NewScript(`
local s, n, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('GET', KEYS[1])
if v then
  local ps, pn = string.match(v, '^(%-?%d+) (%d+)$')
  if ps then
    local d = (s - tonumber(ps)) * 1e9 + (n - tonumber(pn))
    if d > -ttl and d < ttl then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[4])
return 1
`)

// hotScript announces groups in a window's hot set: the groups some
// instance ships, which every other instance then ships too (ship.go).
//
// KEYS: the hot set (zset) and its counter. ARGV: ttl in ms, how many
// members the set keeps, then the groups' keys. The members are added (or
// moved) with the counter's next value as their score, so a reader asks
// for the scores past the last one it read; the set keeps its newest
// members. Returns the score given.
var hotScript = redis.NewScript(`
local ttl, keep = ARGV[1], tonumber(ARGV[2])
local n = redis.call('INCR', KEYS[2])
local args = {}
for i = 3, #ARGV do
  args[#args + 1] = n
  args[#args + 1] = ARGV[i]
  if #args >= 400 or i == #ARGV then
    redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -keep - 1)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return n
`)

// scripts are loaded at connection time.
var scripts = []*redis.Script{sumScript, distinctScript, topScript, claimScript, hotScript}
