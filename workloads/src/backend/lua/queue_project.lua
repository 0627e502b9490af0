-- Apply one queue keeper step on top of exactly the watermark it follows.
-- KEYS: seq (hash id->seq), ids (hash seq->id), ctr (hash), active (zset
--       id->deadline ms), admitted (hash id->admitted ms)
-- ARGV: from, to, first, serving, admitted_at_ms, deadline_ms, drew(0|1),
--       n_placed, then the placed ids, then the admitted ids
-- Returns {1, to} if applied, {-1, wm or -1} if the projection is behind
-- (or emptied), {-2, wm} if it is ahead (a newer keeper wrote it).
local wm = redis.call('HGET', KEYS[3], 'wm')
local from = tonumber(ARGV[1])
if not wm then return {-1, -1} end
wm = tonumber(wm)
if wm < from then return {-1, wm} end
if wm > from then return {-2, wm} end
local first = tonumber(ARGV[3])
local n = tonumber(ARGV[8])
for i = 1, n do
  local id, s = ARGV[8 + i], first + i - 1
  redis.call('HSET', KEYS[1], id, s)
  redis.call('HSET', KEYS[2], s, id)
end
if n > 0 then redis.call('HSET', KEYS[3], 'assigned', first + n - 1) end
if ARGV[7] == '1' then redis.call('HSET', KEYS[3], 'drawn', '1') end
for i = 9 + n, #ARGV do
  redis.call('ZADD', KEYS[4], tonumber(ARGV[6]), ARGV[i])
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[5])
end
-- The serving counter never moves back (an empty step carries no counter).
local serving = tonumber(redis.call('HGET', KEYS[3], 'serving') or '0')
redis.call('HSET', KEYS[3], 'serving', math.max(serving, tonumber(ARGV[4])), 'wm', ARGV[2])
return {1, tonumber(ARGV[2])}
