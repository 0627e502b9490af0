-- Register an accepted booking request under its id.
-- KEYS: registered (hash request id -> "customer|slot")
-- ARGV: request id, "customer|slot"
-- Returns 'new', 'repeat' (same request again) or 'conflict' (id taken).
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 'new'
elseif existing == ARGV[2] then
  return 'repeat'
end
return 'conflict'
