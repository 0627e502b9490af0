-- wrk script: POST the enter endpoint as many distinct clients (a random
-- X-Forwarded-For each, so the per-client rate limit is exercised, not hit).
math.randomseed(os.time())
request = function()
  local ip = math.random(1, 223) .. "." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format("POST", wrk.path, { ["X-Forwarded-For"] = ip })
end
