-- The gateway fleet's roll call (gateway/fleet.py). One call announces a node and
-- returns the live fleet: {live nodes, their workers in total}.
-- KEYS[1]  sorted set  node id -> expiry (ms, on Redis's clock, so hosts' clocks do not matter)
-- KEYS[2]  hash        node id -> its worker count
-- ARGV[1]  node id ("" to only read), ARGV[2] its workers, ARGV[3] TTL in ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(dead) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local total = 0
if #live > 0 then
  local counts = redis.call('HMGET', KEYS[2], unpack(live))
  for _, c in ipairs(counts) do
    total = total + (tonumber(c) or 0)
  end
end
return {#live, total}
