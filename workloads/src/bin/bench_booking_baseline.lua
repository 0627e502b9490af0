-- Decide booking requests in order; each decision is atomic (the script is).
-- The rule is twinkle_domain::booking::decide: at the customer's limit ->
-- already_booked; a seat left -> take it, confirmed; else sold_out.
-- A request decided before returns its recorded decision and changes nothing.
-- KEYS: decided (hash request id -> "decision|customer|slot"),
--       remaining (hash slot -> seats left), confirmed (hash slot -> count),
--       customers (hash customer -> confirmed count)
-- ARGV: per-customer limit, then triples (request id, customer, slot)
-- Returns one {decision, customer's confirmed count, fresh 1|0} per request.
local limit = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 3 do
  local id, customer, slot = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local mine = tonumber(redis.call('HGET', KEYS[4], customer) or '0')
  local seen = redis.call('HGET', KEYS[1], id)
  if seen then
    out[#out + 1] = {string.match(seen, '^[^|]+'), mine, 0}
  else
    -- A slot the inventory does not know has no seats.
    local left = tonumber(redis.call('HGET', KEYS[2], slot) or '0')
    local decision
    if mine >= limit then
      decision = 'already_booked'
    elseif left > 0 then
      decision = 'confirmed'
      redis.call('HINCRBY', KEYS[2], slot, -1)
      redis.call('HINCRBY', KEYS[3], slot, 1)
      mine = redis.call('HINCRBY', KEYS[4], customer, 1)
    else
      decision = 'sold_out'
    end
    redis.call('HSET', KEYS[1], id, decision .. '|' .. customer .. '|' .. slot)
    out[#out + 1] = {decision, mine, 1}
  end
end
return out
