-- Extend a live session to min(admitted + ttl, now + heartbeat timeout).
-- KEYS: active (zset), admitted (hash)
-- ARGV: id, now_ms, ttl_ms, heartbeat_ms
-- Returns 1 if the session is live (and extended), 0 otherwise.
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
local now = tonumber(ARGV[2])
if not deadline or tonumber(deadline) <= now then return 0 end
local admitted = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or now)
local d = math.min(admitted + tonumber(ARGV[3]), now + tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], 'XX', d, ARGV[1])
return 1
