-- Expire dead sessions, then advance the serving counter.
-- KEYS: ctr (hash), ids (hash seq->id), active (zset id->deadline ms), admitted (hash id->admitted ms)
-- ARGV: now_ms, budget, max_active, first_deadline_ms
-- Returns {admitted, expired, assigned, serving, active}
local now = tonumber(ARGV[1])
local expired_ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(expired_ids) do redis.call('HDEL', KEYS[4], id) end
if #expired_ids > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
local assigned = tonumber(redis.call('HGET', KEYS[1], 'assigned') or '0')
local serving = tonumber(redis.call('HGET', KEYS[1], 'serving') or '0')
local active = redis.call('ZCARD', KEYS[3])
local n = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - active, assigned - serving)
if n < 0 then n = 0 end
for s = serving + 1, serving + n do
  local id = redis.call('HGET', KEYS[2], s)
  if id then
    redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), id)
    redis.call('HSET', KEYS[4], id, now)
  end
end
if n > 0 then redis.call('HSET', KEYS[1], 'serving', serving + n) end
return {n, #expired_ids, assigned, serving + n, active + n}
