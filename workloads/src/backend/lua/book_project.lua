-- Project decisions into the booking projection, atomically, only if it
-- reflects exactly the first ARGV[1] decisions of the event (its watermark):
-- a projection that lost writes (rolled back, emptied) is never patched,
-- it is restored whole; one already past `from` was written by a newer
-- decider and is left alone.
-- KEYS: watermark, decided (hash request id -> "decision|customer|slot"),
--       remaining (hash slot -> seats left), confirmed (hash slot -> count)
-- ARGV: from, then quads (request id, customer, slot, decision)
-- Returns {"applied", new watermark} | {"behind", watermark or -1} |
--         {"ahead", watermark}.
local from = tonumber(ARGV[1])
local wm = redis.call('GET', KEYS[1])
if not wm then
  return {'behind', -1}
end
wm = tonumber(wm)
if wm < from then
  return {'behind', wm}
elseif wm > from then
  return {'ahead', wm}
end
local n = 0
for i = 2, #ARGV, 4 do
  local id, customer, slot, decision = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  redis.call('HSET', KEYS[2], id, decision .. '|' .. customer .. '|' .. slot)
  if decision == 'confirmed' then
    redis.call('HINCRBY', KEYS[3], slot, -1)
    redis.call('HINCRBY', KEYS[4], slot, 1)
  end
  n = n + 1
end
redis.call('SET', KEYS[1], from + n)
return {'applied', from + n}
