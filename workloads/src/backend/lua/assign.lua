-- Assign sequence numbers in log order, idempotently.
-- KEYS: seq (hash id->seq), ids (hash seq->id), ctr (hash), pending (list), pendingset (hash id->pre)
-- ARGV: shuffle(0|1), then pairs of (id, pre(0|1))
-- Returns one integer per entry: its sequence number, or 0 = held for the draw.
local shuffle = ARGV[1] == '1'
local drawn = redis.call('HGET', KEYS[3], 'drawn') == '1'
local out = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local seq = redis.call('HGET', KEYS[1], id)
  if seq then
    out[#out + 1] = tonumber(seq)
  elseif shuffle and not drawn then
    if redis.call('HSETNX', KEYS[5], id, ARGV[i + 1]) == 1 then
      redis.call('RPUSH', KEYS[4], id)
    end
    out[#out + 1] = 0
  else
    local n = redis.call('HINCRBY', KEYS[3], 'assigned', 1)
    redis.call('HSET', KEYS[1], id, n)
    redis.call('HSET', KEYS[2], n, id)
    out[#out + 1] = n
  end
end
return out
