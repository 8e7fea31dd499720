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
// Each shared value is kept twice: the total over every instance, and the
// part this instance (ARGV inst, random per Store) added. What the other
// instances contributed is the difference, worked out from two values
// built by the same operations in the same order; so an instance alone
// sees exactly zero from the others, and its answers are exactly those of
// its local window.

// sumScript adds one group's per-bucket deltas of a Sum window and reads
// its buckets back.
//
// KEYS: the group's bucket hashes for the live buckets lo..hi, in order.
// ARGV: inst, ttl in ms, then one delta per key ("" for none).
// Each hash has fields "a" (every instance) and inst (this one).
// Returns a flat array: per key, "a" then inst (nil when missing).
var sumScript = redis.NewScript(`
local inst, ttl = ARGV[1], ARGV[2]
local out = {}
for i, k in ipairs(KEYS) do
  local d = ARGV[i + 2]
  if d ~= '' then
    redis.call('HINCRBYFLOAT', k, 'a', d)
    redis.call('HINCRBYFLOAT', k, inst, d)
    redis.call('PEXPIRE', k, ttl)
  end
  local v = redis.call('HMGET', k, 'a', inst)
  out[2 * i - 1] = v[1]
  out[2 * i] = v[2]
end
return out
`)

// distinctScript adds one group's items of a Distinct window to per-bucket
// HyperLogLogs and counts what the other instances add to ours.
//
// KEYS: per live bucket lo..hi, the shared HLL then this instance's HLL;
// last, the group's writers hash (instance → newest bucket it wrote).
// ARGV: ttl in ms, inst, lo, hi, then per bucket: n, then n items (8-byte
// strings).
// Returns {all - mine over lo..hi, all - mine over lo+1..hi}: the distinct
// items of other instances that this one has not sent, over the window
// now and over the window once its oldest bucket has left. Merging HLLs
// costs tens of microseconds, so it is skipped, and {0, 0} returned, when
// no other instance wrote to the group's live buckets.
var distinctScript = redis.NewScript(`
local ttl, inst, lo, hi = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local nb = (#KEYS - 1) / 2
local wk = KEYS[#KEYS]
local p = 5
local all, mine = {}, {}
for i = 1, nb do
  local sk, mk = KEYS[2 * i - 1], KEYS[2 * i]
  local c = tonumber(ARGV[p])
  p = p + 1
  if c > 0 then
    local last = p + c - 1
    for j = p, last, 4000 do
      local e = math.min(j + 3999, last)
      redis.call('PFADD', sk, unpack(ARGV, j, e))
      redis.call('PFADD', mk, unpack(ARGV, j, e))
    end
    redis.call('PEXPIRE', sk, ttl)
    redis.call('PEXPIRE', mk, ttl)
    p = last + 1
  end
  all[i], mine[i] = sk, mk
end
redis.call('HSET', wk, inst, hi)
redis.call('PEXPIRE', wk, ttl)
local shared = false
local ws = redis.call('HGETALL', wk)
for j = 1, #ws, 2 do
  if ws[j] ~= inst and tonumber(ws[j + 1]) >= lo then
    shared = true
  elseif tonumber(ws[j + 1]) < lo then
    redis.call('HDEL', wk, ws[j])
  end
end
if not shared then
  return {0, 0}
end
local cur = redis.call('PFCOUNT', unpack(all)) - redis.call('PFCOUNT', unpack(mine))
local nxt = 0
if nb > 1 then
  nxt = redis.call('PFCOUNT', unpack(all, 2)) - redis.call('PFCOUNT', unpack(mine, 2))
end
return {cur, nxt}
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
