-- Promote a staged full copy of the booking projection, atomically, unless
-- the live one already reflects as many decisions or more (an older decider
-- never overwrites a newer one's), or the staged copy is not whole (Redis
-- emptied or failed over between staging and promoting).
-- KEYS: watermark, then the live keys (capacity, remaining, confirmed,
--       decided), then their staged copies in the same order, then the
--       registrations-incomplete flag
-- ARGV: the staged copy's watermark, its slots, its decisions
-- Returns 1 if promoted, 0 if the live projection was kept, -1 if the
-- staged copy was incomplete (nothing changed; restore again).
local staged_wm = tonumber(ARGV[1])
local wm = redis.call('GET', KEYS[1])
if wm and tonumber(wm) >= staged_wm then
  redis.call('DEL', KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  return 0
end
if redis.call('HLEN', KEYS[6]) ~= tonumber(ARGV[2])
    or redis.call('HLEN', KEYS[9]) ~= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  return -1
end
for i = 2, 5 do
  local staged = KEYS[i + 4]
  if redis.call('EXISTS', staged) == 1 then
    redis.call('RENAME', staged, KEYS[i])
    -- Staged copies expire in case their writer dies; the live ones don't.
    redis.call('PERSIST', KEYS[i])
  else
    redis.call('DEL', KEYS[i])
  end
end
redis.call('SET', KEYS[1], staged_wm)
-- Registrations of requests not decided yet may be gone with what was
-- lost: "unknown" is not trusted until the decider has caught up.
redis.call('SET', KEYS[10], '1')
return 1
