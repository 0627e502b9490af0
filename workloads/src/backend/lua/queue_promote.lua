-- Promote a staged full copy of the queue's places, atomically, unless the
-- live projection already reflects as many journal steps or more (an older
-- keeper never overwrites a newer one's), or the staged copy is not whole
-- (Redis emptied or failed over between staging and promoting). Sessions
-- are merged, not replaced: a live one keeps its later deadline.
-- KEYS: seq, ids, ctr, active, admitted (live), then staged seq, ids,
--       active, admitted
-- ARGV: watermark, assigned, serving, drawn(0|1), sessions
-- Returns 1 if promoted, 0 if the live projection was kept, -1 if the
-- staged copy was incomplete (nothing changed; restore again).
local staged_wm = tonumber(ARGV[1])
local wm = redis.call('HGET', KEYS[3], 'wm')
local function drop() redis.call('DEL', KEYS[6], KEYS[7], KEYS[8], KEYS[9]) end
if wm and tonumber(wm) >= staged_wm then drop() return 0 end
if redis.call('HLEN', KEYS[6]) ~= tonumber(ARGV[2])
    or redis.call('ZCARD', KEYS[8]) ~= tonumber(ARGV[5]) then
  drop()
  return -1
end
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i + 5]) == 1 then
    redis.call('RENAME', KEYS[i + 5], KEYS[i])
    redis.call('PERSIST', KEYS[i])
  else
    redis.call('DEL', KEYS[i])
  end
end
if tonumber(ARGV[5]) > 0 then
  redis.call('ZUNIONSTORE', KEYS[4], 2, KEYS[4], KEYS[8], 'AGGREGATE', 'MAX')
  local admitted = redis.call('HGETALL', KEYS[9])
  for i = 1, #admitted, 2 do
    redis.call('HSETNX', KEYS[5], admitted[i], admitted[i + 1])
  end
end
redis.call('DEL', KEYS[8], KEYS[9])
redis.call('HSET', KEYS[3], 'assigned', ARGV[2], 'serving', ARGV[3], 'drawn', ARGV[4],
  'wm', staged_wm)
return 1
