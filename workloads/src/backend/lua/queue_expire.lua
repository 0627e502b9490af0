-- End sessions past their deadline; return the live ones left and the
-- projection's watermark (-1: none).
-- KEYS: ctr (hash), active (zset id->deadline ms), admitted (hash)
-- ARGV: now_ms
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[3], id) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local wm = redis.call('HGET', KEYS[1], 'wm')
return {tonumber(wm or '-1'), redis.call('ZCARD', KEYS[2])}
