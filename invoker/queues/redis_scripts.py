"""The Lua scripts of the Redis queue: each step is one atomic round trip.

Keys of one version all carry the version's ``{hash tag}``, so each script touches one Redis
Cluster slot. Per version (see ``invoker.queues.redis`` for the layout):

    KEYS  s stream   h head list   w state hash   d payload hash   a attempts hash
          m meta hash (function id|enqueued at)   n waiting-in-stream counter   l last delivered id

State of a request (``w``): ``w|<sid>`` waiting in the stream, ``h|<sid>`` waiting in the head
list (requeued or reclaimed), ``f|<sid>|<process>`` in flight at that process. The stream entry
lives until ack/cancel, and while a request is in flight or in the head list its stream id is
pending in the consumer group under its holder (``~head`` for the head list).
"""

from __future__ import annotations

GROUP = "g"
HEAD_CONSUMER = "~head"

# KEYS s h w d a m n ; ARGV rid, function id, enqueued at, payload, limit (-1: none), maxlen, wake channel, me,
# version id, ttl, own subscriptions to the wake channel (-1: unknown, always publish)
# KEYS[8], standalone Redis only: the request index, written here (ARGV version id, ttl) instead of
# in a separate command of another slot.
# The wake goes out only when another process listens: on one process, parsing its own wake cost
# the gateway a pub/sub message per invocation (~11 % of its CPU in Redis mode). Redis Cluster
# counts only one node's subscribers, so there the caller says -1.
ENQUEUE = """
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return -1 end
local waiting = tonumber(redis.call('GET', KEYS[7]) or '0') + redis.call('LLEN', KEYS[2])
local limit = tonumber(ARGV[5])
if limit >= 0 and waiting >= limit then return -2 end
if KEYS[8] and not redis.call('SET', KEYS[8], ARGV[9], 'NX', 'EX', ARGV[10]) then return -1 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0', 'MKSTREAM')
end
local sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'r', ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], 'w|' .. sid)
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('INCR', KEYS[7])
local mine = tonumber(ARGV[11] or '-1')
if mine < 0 or redis.call('PUBSUB', 'NUMSUB', ARGV[7])[2] > mine then
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
return waiting + 1
"""

# KEYS s h w d a m n l ; ARGV consumer, count → {rid, meta, attempts, payload, ...}
TAKE = """
local out = {}
local want = tonumber(ARGV[2])
local guard = 0
while #out < want * 4 and guard < want * 4 + 8 do
  guard = guard + 1
  local rid = redis.call('LPOP', KEYS[2])
  local sid = nil
  if rid then
    local st = redis.call('HGET', KEYS[3], rid)
    if st and string.sub(st, 1, 1) == 'h' then
      sid = string.sub(st, 3)
      redis.call('XCLAIM', KEYS[1], 'g', ARGV[1], 0, sid, 'FORCE', 'JUSTID')
    end
  else
    if redis.call('EXISTS', KEYS[1]) == 0 then break end
    local r = redis.call('XREADGROUP', 'GROUP', 'g', ARGV[1], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
    if not r then break end
    local e = r[1][2][1]
    sid = e[1]
    rid = e[2][2]
    redis.call('DECR', KEYS[7])
    redis.call('SET', KEYS[8], sid)
    local st = redis.call('HGET', KEYS[3], rid)
    if not st or st ~= 'w|' .. sid then
      redis.call('XACK', KEYS[1], 'g', sid)
      redis.call('XDEL', KEYS[1], sid)
      sid = nil
    end
  end
  if sid then
    redis.call('HSET', KEYS[3], rid, 'f|' .. sid .. '|' .. ARGV[1])
    local attempts = redis.call('HINCRBY', KEYS[5], rid, 1)
    out[#out + 1] = rid
    out[#out + 1] = redis.call('HGET', KEYS[6], rid)
    out[#out + 1] = attempts
    out[#out + 1] = redis.call('HGET', KEYS[4], rid)
  end
end
return out
"""

# KEYS s h w ; ARGV rid, wake channel, me (only the holder may put it back)
REQUEUE = """
local st = redis.call('HGET', KEYS[3], ARGV[1])
if not st or string.sub(st, 1, 1) ~= 'f' then return 0 end
local sid, holder = string.match(st, '^f|([^|]+)|(.*)$')
if holder ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], 'g', '~head', 0, sid, 'FORCE', 'JUSTID')
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], 'h|' .. sid)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""

# KEYS s w d a m [index, standalone only] ; ARGV rid, me
# Only the holder: a process judged dead may not finish a redelivery.
ACK = """
local st = redis.call('HGET', KEYS[2], ARGV[1])
if not st or string.sub(st, 1, 1) ~= 'f' then return 0 end
local sid, holder = string.match(st, '^f|([^|]+)|(.*)$')
if holder ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], 'g', sid)
redis.call('XDEL', KEYS[1], sid)
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if KEYS[6] then redis.call('DEL', KEYS[6]) end
return 1
"""

# KEYS s h w d a m n ; ARGV rid → {state, meta, attempts, payload} or nil
CANCEL = """
local st = redis.call('HGET', KEYS[3], ARGV[1])
if not st then return false end
local kind = string.sub(st, 1, 1)
local sid
if kind == 'w' then
  sid = string.sub(st, 3)
  redis.call('DECR', KEYS[7])
elseif kind == 'h' then
  sid = string.sub(st, 3)
  redis.call('LREM', KEYS[2], 1, ARGV[1])
  redis.call('XACK', KEYS[1], 'g', sid)
else
  sid = string.match(st, '^f|([^|]+)|')
  redis.call('XACK', KEYS[1], 'g', sid)
end
redis.call('XDEL', KEYS[1], sid)
local out = {st, redis.call('HGET', KEYS[6], ARGV[1]), redis.call('HGET', KEYS[5], ARGV[1]) or '0',
             redis.call('HGET', KEYS[4], ARGV[1])}
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return out
"""

# KEYS s h w d a m n l → {rid, state, meta, attempts, payload, ...}: head list, stream order waiting, in flight
PURGE = """
local out = {}
local function add(rid)
  out[#out + 1] = rid
  out[#out + 1] = redis.call('HGET', KEYS[3], rid)
  out[#out + 1] = redis.call('HGET', KEYS[6], rid)
  out[#out + 1] = redis.call('HGET', KEYS[5], rid) or '0'
  out[#out + 1] = redis.call('HGET', KEYS[4], rid)
end
for _, rid in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do add(rid) end
local flying = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local rid = e[2][2]
  local st = redis.call('HGET', KEYS[3], rid)
  if st and string.sub(st, 1, 1) == 'w' then add(rid)
  elseif st and string.sub(st, 1, 1) == 'f' then flying[#flying + 1] = rid end
end
for _, rid in ipairs(flying) do add(rid) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return out
"""

# KEYS h n
DEPTH = """
return (tonumber(redis.call('GET', KEYS[2]) or '0')) + redis.call('LLEN', KEYS[1])
"""

# KEYS s h m n l → {waiting, meta of the next to be served (function id|enqueue time) or nil}.
# The next to be served: the head list's first (requeued, so the oldest), else the stream's first
# entry after the last one delivered. O(1).
HEAD = """
local waiting = (tonumber(redis.call('GET', KEYS[4]) or '0')) + redis.call('LLEN', KEYS[2])
local rid = redis.call('LINDEX', KEYS[2], 0)
if not rid then
  local last = redis.call('GET', KEYS[5])
  local from = '-'
  if last then from = '(' .. last end
  local first = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1)
  if #first > 0 then rid = first[1][2][2] end
end
local meta = false
if rid then meta = redis.call('HGET', KEYS[3], rid) end
return {waiting, meta}
"""

# KEYS s h w m l ; ARGV rid → {position, meta} or nil. O(position) for stream-waiting requests.
POSITION = """
local st = redis.call('HGET', KEYS[3], ARGV[1])
if not st then return false end
local meta = redis.call('HGET', KEYS[4], ARGV[1])
local kind = string.sub(st, 1, 1)
if kind == 'f' then return {0, meta} end
if kind == 'h' then return {redis.call('LPOS', KEYS[2], ARGV[1]) + 1, meta} end
local sid = string.sub(st, 3)
local last = redis.call('GET', KEYS[5])
local from = '-'
if last then from = '(' .. last end
local before = #redis.call('XRANGE', KEYS[1], from, '(' .. sid)
return {redis.call('LLEN', KEYS[2]) + before + 1, meta}
"""

# KEYS s h w ; ARGV dead consumer, wake channel, me → how many went back to the head
RECLAIM = """
local moved = 0
local pending = redis.call('XPENDING', KEYS[1], 'g', '-', '+', 1000, ARGV[1])
for i = #pending, 1, -1 do
  local sid = pending[i][1]
  local e = redis.call('XRANGE', KEYS[1], sid, sid)
  if #e == 1 then
    local rid = e[1][2][2]
    if redis.call('HGET', KEYS[3], rid) == 'f|' .. sid .. '|' .. ARGV[1] then
      redis.call('LPUSH', KEYS[2], rid)
      redis.call('HSET', KEYS[3], rid, 'h|' .. sid)
      moved = moved + 1
    end
  end
  redis.call('XCLAIM', KEYS[1], 'g', '~head', 0, sid, 'FORCE', 'JUSTID')
end
if #pending < 1000 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'g', ARGV[1]) end
if moved > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return moved
"""
