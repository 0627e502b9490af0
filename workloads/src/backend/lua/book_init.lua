-- Create missing slots; never touch one that exists (sold seats stay sold).
-- KEYS: capacity (hash slot -> capacity), remaining (hash), confirmed (hash)
-- ARGV: pairs (slot, capacity)
-- Returns how many slots were created.
local created = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('HSET', KEYS[3], ARGV[i], 0)
    created = created + 1
  end
end
return created
