-- Give a lease up, if it is still ours (compare-and-delete).
-- KEYS: lease; ARGV: holder. Returns 1 if released.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
