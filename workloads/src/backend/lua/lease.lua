-- Take or renew a lease: succeeds if free or already ours.
-- KEYS: lease; ARGV: holder, ttl_ms. Returns 1 if we hold it.
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
