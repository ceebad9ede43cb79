-- Rate limit and quota: check every dimension, then count in all of them or none.
-- One call per request, atomic, on Redis server time (TIME), so that neither
-- clock skew between gateway hosts nor a race between workers can admit extra.
--
-- KEYS[1] sliding-window log for the per-second limit  (ZSET, score = microseconds)
-- KEYS[2] sliding-window log for the per-minute limit  (ZSET)
-- KEYS[3] prefix of the quota counters; ":d:<day>" and ":m:<yyyymm>" are appended.
--         All three share the subscription's hash tag, so they live in one cluster slot.
-- ARGV[1] unique member for the logs (the request id)
-- ARGV[2] per-second limit, ARGV[3] per-minute limit, ARGV[4] daily quota,
-- ARGV[5] monthly quota; 0 means unlimited.
--
-- Returns {denied, retry_after_ms, used_s, reset_s_ms, used_m, reset_m_ms,
--          used_d, reset_d_s, used_mo, reset_mo_s}
-- denied: 0 admitted, 1 rate limited, 2 quota exhausted. "used" counts include
-- this request when it was admitted.

local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs * 1000000 + tonumber(t[2])
local member = ARGV[1]
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local windows = {1000000, 60000000}
local quota_d = tonumber(ARGV[4])
local quota_mo = tonumber(ARGV[5])

-- Civil calendar from days since the epoch (H. Hinnant's algorithms), for UTC months.
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local day = math.floor(secs / 86400)
local y, m = civil(day)
local ny, nm = y, m + 1
if nm > 12 then ny, nm = y + 1, 1 end
local reset_d = (day + 1) * 86400 - secs
local reset_mo = days_from_civil(ny, nm, 1) * 86400 - secs
local key_d = KEYS[3] .. ':d:' .. day
local key_mo = KEYS[3] .. ':m:' .. string.format('%04d%02d', y, m)

local used_d = tonumber(redis.call('GET', key_d) or '0')
local used_mo = tonumber(redis.call('GET', key_mo) or '0')

local denied = 0
local retry_ms = 0
if quota_d > 0 and used_d >= quota_d then
  denied = 2
  retry_ms = reset_d * 1000
end
if quota_mo > 0 and used_mo >= quota_mo then
  denied = 2
  retry_ms = math.max(retry_ms, reset_mo * 1000)
end

local used = {0, 0}
local reset = {0, 0}
for i = 1, 2 do
  if limits[i] > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - windows[i])
    used[i] = redis.call('ZCARD', KEYS[i])
    -- Seconds until the oldest entry leaves the window; only worth a lookup when the
    -- window is nearly full, otherwise the window length is a fine upper bound.
    reset[i] = windows[i] / 1000
    if used[i] > 0 and used[i] + 1 >= limits[i] then
      local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      reset[i] = math.ceil((tonumber(oldest[2]) + windows[i] - now) / 1000)
    end
    if used[i] >= limits[i] and denied == 0 then
      denied = 1
    end
    if used[i] >= limits[i] and denied == 1 then
      -- Admission resumes when enough of the oldest entries leave the window.
      local excess = used[i] - limits[i]
      local entry = redis.call('ZRANGE', KEYS[i], excess, excess, 'WITHSCORES')
      local wait = math.ceil((tonumber(entry[2]) + windows[i] - now) / 1000)
      retry_ms = math.max(retry_ms, wait)
    end
  end
end

if denied == 0 then
  -- Admitted: count it everywhere. Rejected requests are counted nowhere.
  for i = 1, 2 do
    if limits[i] > 0 then
      redis.call('ZADD', KEYS[i], now, member)
      redis.call('PEXPIRE', KEYS[i], windows[i] / 1000 + 1000)
      used[i] = used[i] + 1
    end
  end
  used_d = redis.call('INCR', key_d)
  if used_d == 1 then redis.call('EXPIRE', key_d, reset_d + 86400) end
  used_mo = redis.call('INCR', key_mo)
  if used_mo == 1 then redis.call('EXPIRE', key_mo, reset_mo + 86400) end
end

return {denied, retry_ms, used[1], reset[1], used[2], reset[2], used_d, reset_d, used_mo, reset_mo}
