-- The opening draw, compare-and-set: places ARGV (ids in final order) only if
-- the draw has not happened and the pending list still has exactly that many
-- entries (nothing arrived between the caller's read and this call).
-- KEYS: seq, ids, ctr, pending, pendingset
-- Returns the number placed, -1 if already drawn, -2 if pending changed.
if redis.call('HGET', KEYS[3], 'drawn') == '1' then return -1 end
if redis.call('LLEN', KEYS[4]) ~= #ARGV then return -2 end
for i = 1, #ARGV do
  local id = ARGV[i]
  if not redis.call('HGET', KEYS[1], id) then
    local n = redis.call('HINCRBY', KEYS[3], 'assigned', 1)
    redis.call('HSET', KEYS[1], id, n)
    redis.call('HSET', KEYS[2], n, id)
  end
end
redis.call('HSET', KEYS[3], 'drawn', '1')
redis.call('DEL', KEYS[4], KEYS[5])
return #ARGV
