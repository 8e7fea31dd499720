package rediswindow

import "github.com/redis/go-redis/v9"

// The Lua scripts below run one window group's flush in one round trip
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

// sumScript adds one group's per-bucket deltas of a Sum window and reads
// back what the other instances added to the group.
//
// KEYS: the group's hash, with fields "<seq>:a" (every instance) and
// "<seq>:<inst>" (instance inst) per bucket seq.
// ARGV: inst, ttl in ms, lo (oldest live bucket), then pairs of bucket
// seq and delta.
// Fields of buckets before lo are deleted. Returns a flat array of
// triples seq, "a", inst for the buckets where the two differ: nothing,
// for an instance alone.
var sumScript = redis.NewScript(`
local k, inst, lo = KEYS[1], ARGV[1], tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', k, ARGV[i] .. ':a', ARGV[i + 1])
  redis.call('HINCRBYFLOAT', k, ARGV[i] .. ':' .. inst, ARGV[i + 1])
end
if #ARGV > 3 then
  redis.call('PEXPIRE', k, ARGV[2])
end
local f = redis.call('HGETALL', k)
local a, m, dead = {}, {}, {}
for j = 1, #f, 2 do
  local seq, who = string.match(f[j], '^(%-?%d+):(%w+)$')
  if seq then
    if tonumber(seq) < lo then
      dead[#dead + 1] = f[j]
    elseif who == 'a' then
      a[seq] = f[j + 1]
    elseif who == inst then
      m[seq] = f[j + 1]
    end
  end
end
if #dead > 0 then
  redis.call('HDEL', k, unpack(dead))
end
local out = {}
for seq, v in pairs(a) do
  if v ~= m[seq] then
    out[#out + 1] = seq
    out[#out + 1] = v
    out[#out + 1] = m[seq] or '0'
  end
end
return out
`)

// distinctScript adds one group's items of a Distinct window to this
// instance's per-bucket HyperLogLogs and counts what the other instances
// add to them.
//
// KEYS: this instance's HLL per live bucket lo..hi ("<tag>:<seq>:<inst>"),
// then the group's writers hash (instance → newest bucket it wrote).
// ARGV: ttl in ms, inst, lo, hi, then per bucket its items, packed in one
// string of 8 bytes each.
// Returns {all - mine over lo..hi, all - mine over lo+1..hi}, where all
// merges every writer's HLLs: the distinct items of other instances that
// this one has not sent, over the window now and over the window once its
// oldest bucket has left. The other writers' keys are named after ours,
// so they share our hash slot. Merging HLLs costs tens of microseconds, so
// when no other instance wrote to the live buckets it is skipped and {0, 0}
// returned at once.
var distinctScript = redis.NewScript(`
local ttl, inst, lo, hi = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local nb = #KEYS - 1
local wk = KEYS[#KEYS]
for i = 1, nb do
  local s = ARGV[4 + i]
  if #s > 0 then
    local t = {}
    for j = 1, #s, 8 do
      t[#t + 1] = string.sub(s, j, j + 7)
      if #t == 4000 or j + 8 > #s then
        redis.call('PFADD', KEYS[i], unpack(t))
        t = {}
      end
    end
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
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
if #others == 0 then
  return {0, 0}
end
local function count(from)
  local all, mine = {}, {}
  for i = from, nb do
    local k = KEYS[i]
    local stem = string.sub(k, 1, #k - #inst)
    mine[#mine + 1] = k
    all[#all + 1] = k
    for _, o in ipairs(others) do
      all[#all + 1] = stem .. o
    end
  end
  return redis.call('PFCOUNT', unpack(all)) - redis.call('PFCOUNT', unpack(mine))
end
local nxt = 0
if nb > 1 then
  nxt = count(2)
end
return {count(1), nxt}
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
  end
  if c > 0 then
    redis.call('ZREMRANGEBYRANK', sk, 0, -keep - 1)
    redis.call('ZREMRANGEBYRANK', mk, 0, -keep - 1)
    redis.call('PEXPIRE', sk, ttl)
    redis.call('PEXPIRE', mk, ttl)
    redis.call('PEXPIRE', tk, ttl)
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

// scripts are loaded at connection time.
var scripts = []*redis.Script{sumScript, distinctScript, topScript, claimScript}
