-- Rate limits (GCRA token buckets) and quotas (exact counters), in one atomic call
-- on Redis server time (TIME): neither clock skew between gateway hosts nor a race
-- between workers or nodes can admit extra.
--
-- KEYS[1] the subscription's bucket state (HASH, O(1) whatever the limit):
--           t    last update, microseconds of Redis time
--           s, m credit in the per-second and per-minute buckets (1 admission = W credits,
--                W = the window in microseconds; a bucket refills L credits per microsecond)
--           h:<lease id>  "<held> <expiry us>": admissions a worker holds in a lease (kept
--                GRACE_US past its expiry, for a late settlement of its quota)
-- KEYS[2] the UTC day's counter   <base>:q:d:<epoch day>
-- KEYS[3] the UTC month's counter <base>:q:m:<yyyymm>
--         All three share the subscription's hash tag {s:<id>}: one Redis Cluster slot.
--
-- ARGV[1] op: 'a' (admit, maybe with a lease) or 'r' (return a lease)
-- ARGV[2], ARGV[3] the epoch day and yyyymm the caller built KEYS[2], KEYS[3] for. For 'a'
--         they must be today's on Redis time, else nothing happens and the reply is
--         {-1, day, yyyymm} so the caller can retry with the right keys. For 'r' they are
--         the lease's own (a lease taken before midnight is refunded to its own day).
-- ARGV[4..7] per-second rate, its depth (burst), per-minute rate, its depth; 0 = unlimited
-- 'a': ARGV[8] daily quota, ARGV[9] monthly quota (0 = unlimited), ARGV[10] admissions
--      wanted (1 = this request only; n > 1 = this one plus a lease of up to n - 1),
--      ARGV[11] lease id, ARGV[12] lease lifetime in microseconds, ARGV[13] lease divisor
--      (a lease takes at most 1/divisor of what any dimension has left), ARGV[14], ARGV[15]
--      a previous lease to settle first: its id and how many of it went unused ('' = none).
-- 'r': ARGV[8] lease id, ARGV[9] how many of it went unused.
--
-- 'a' returns {denied, retry_after_ms, granted, left_s, full_s_ms, left_m, full_m_ms,
--              used_d, reset_d_s, used_mo, reset_mo_s, day, yyyymm}
--   denied: 0 admitted, 1 rate limited, 2 quota exhausted. granted: admissions taken
--   (this request plus the lease), 0 when denied; nothing is consumed then. left_*: whole
--   admissions left in each bucket; full_*_ms: until that bucket is full again.
-- 'r' returns {settled} (1 if the lease was still live and its unused part went back).
--
-- Leases are exact because held admissions stay in the bucket's books: a bucket never
-- refills above depth - held (credit + held <= depth at all times), so whether the holder
-- uses its admissions now or later, no interval of length t ever sees more than
-- depth + rate * t admitted across the fleet. A lease ends at its expiry here; the holder
-- stops using it earlier (its own clock starts before this script runs).

local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs * 1000000 + tonumber(t[2])
local op = ARGV[1]

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
local ym = string.format('%04d%02d', y, m)
local day_s = string.format('%d', day)
if op == 'a' and (ARGV[2] ~= day_s or ARGV[3] ~= ym) then
  return {-1, day_s, ym}
end

local function int(x)
  return string.format('%.0f', x)
end

-- The buckets: {field, rate, depth, window us}. Credits are whole numbers below 2^53
-- for any depth up to 150 million per minute, so the arithmetic is exact.
local buckets = {}
for i, spec in ipairs({{'s', 4, 1000000}, {'m', 6, 60000000}}) do
  local rate = tonumber(ARGV[spec[2]])
  if rate > 0 then
    local depth = math.max(rate, tonumber(ARGV[spec[2] + 1]))
    buckets[#buckets + 1] = {spec[1], rate, depth, spec[3]}
  end
end

-- Load the state, then bring every bucket forward to now, one lease expiry at a time:
-- between two events the cap is depth - held, and it rises when a lease ends.
-- A lease's record outlives its end by GRACE_US: a holder that could not settle in time
-- (Redis was away) can still give back the quota it did not use.
local GRACE_US = 30000000
local raw = redis.call('HGETALL', KEYS[1])
local st = {}
for i = 1, #raw, 2 do st[raw[i]] = raw[i + 1] end
local last = tonumber(st['t'] or '')
local held = 0
local leases = {}
local function parse(v)
  local sp = string.find(v, ' ', 1, true)
  return tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1))
end
for f, v in pairs(st) do
  if string.sub(f, 1, 2) == 'h:' then
    local n, e = parse(v)
    if last == nil or e > last then  -- still held at the last update
      held = held + n
      leases[#leases + 1] = {e, n}
    end
    if e + GRACE_US <= now then
      redis.call('HDEL', KEYS[1], f)
      st[f] = nil
    end
  end
end
table.sort(leases, function(a, b) return a[1] < b[1] end)

local credit = {}
local function refill(b, dt)
  local cap = math.max(0, (b[3] - held) * b[4])
  local c = credit[b[1]]
  if c >= cap then return cap end
  if dt <= 0 then return c end
  if dt >= (cap - c) / b[2] then return cap end
  return c + b[2] * dt
end

for _, b in ipairs(buckets) do
  local c = tonumber(st[b[1]] or '')
  if c == nil or last == nil then c = b[3] * b[4] end
  credit[b[1]] = c
end
local cur = last or now
for _, lease in ipairs(leases) do
  if lease[1] > now then break end
  for _, b in ipairs(buckets) do credit[b[1]] = refill(b, lease[1] - cur) end
  if lease[1] > cur then cur = lease[1] end
  held = held - lease[2]
end
for _, b in ipairs(buckets) do credit[b[1]] = refill(b, now - cur) end

-- Settle a lease: its unused admissions go back to the quota counters, and, while the
-- lease is live, to the bucket (after its end they can no longer be told from used ones).
local function settle(id, unused, day_key, month_key)
  local f = 'h:' .. id
  local v = st[f]
  if v == nil then return 0 end
  local n, e = parse(v)
  unused = math.max(0, math.min(unused, n))
  redis.call('HDEL', KEYS[1], f)
  st[f] = nil
  if e > now then
    held = held - n
    for _, b in ipairs(buckets) do
      credit[b[1]] = math.min(credit[b[1]] + unused * b[4], math.max(0, (b[3] - held) * b[4]))
    end
  end
  if unused > 0 then
    for _, k in ipairs({day_key, month_key}) do
      if redis.call('EXISTS', k) == 1 then redis.call('DECRBY', k, unused) end
    end
  end
  return 1
end

local function save()
  local refill_us, lease_us = 0, 0
  local args = {'t', int(now)}
  for _, b in ipairs(buckets) do
    args[#args + 1] = b[1]
    args[#args + 1] = int(credit[b[1]])
    refill_us = math.max(refill_us, (b[3] * b[4] - credit[b[1]]) / b[2])
  end
  for f, v in pairs(st) do
    if string.sub(f, 1, 2) == 'h:' then
      local _, e = parse(v)
      lease_us = math.max(lease_us, e + GRACE_US - now)
    end
  end
  if #buckets == 0 and lease_us == 0 then
    -- Quota only and nothing held: no state to keep (a plan may have dropped its rates).
    if #raw > 0 then redis.call('DEL', KEYS[1]) end
    return
  end
  redis.call('HSET', KEYS[1], unpack(args))
  -- Once the last lease has ended and every bucket has refilled, the state says nothing a
  -- fresh one would not: let it go, so an idle subscription costs no memory.
  redis.call('PEXPIRE', KEYS[1], math.ceil((lease_us + refill_us) / 1000) + 1000)
end

if op == 'r' then
  local settled = settle(ARGV[8], tonumber(ARGV[9]), KEYS[2], KEYS[3])
  save()
  return {settled}
end

if ARGV[14] ~= '' then settle(ARGV[14], tonumber(ARGV[15]), KEYS[2], KEYS[3]) end

local quota_d = tonumber(ARGV[8])
local quota_mo = tonumber(ARGV[9])
local used_d = tonumber(redis.call('GET', KEYS[2]) or '0')
local used_mo = tonumber(redis.call('GET', KEYS[3]) or '0')

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
-- What each dimension can still admit now, whole admissions.
local avail = {}
for _, b in ipairs(buckets) do
  local a = math.floor(credit[b[1]] / b[4])
  avail[#avail + 1] = a
  if a < 1 and denied ~= 2 then
    denied = 1
    retry_ms = math.max(retry_ms, math.ceil((b[4] - credit[b[1]]) / b[2] / 1000))
  end
end
if quota_d > 0 then avail[#avail + 1] = quota_d - used_d end
if quota_mo > 0 then avail[#avail + 1] = quota_mo - used_mo end

local granted = 0
if denied == 0 then
  -- This request, plus a lease of at most 1/divisor of what is left after it in every
  -- dimension: leases shrink near the limit and vanish close to it.
  local extra = tonumber(ARGV[10]) - 1
  local divisor = tonumber(ARGV[13])
  for _, a in ipairs(avail) do extra = math.min(extra, math.floor((a - 1) / divisor)) end
  if extra < 0 then extra = 0 end
  granted = 1 + extra
  for _, b in ipairs(buckets) do credit[b[1]] = credit[b[1]] - granted * b[4] end
  if extra > 0 then
    local f = 'h:' .. ARGV[11]
    local v = extra .. ' ' .. int(now + tonumber(ARGV[12]))
    redis.call('HSET', KEYS[1], f, v)
    st[f] = v
    held = held + extra
  end
  used_d = redis.call('INCRBY', KEYS[2], granted)
  if used_d == granted then redis.call('EXPIRE', KEYS[2], reset_d + 86400) end
  used_mo = redis.call('INCRBY', KEYS[3], granted)
  if used_mo == granted then redis.call('EXPIRE', KEYS[3], reset_mo + 86400) end
end
save()

local out = {denied, retry_ms, granted, 0, 0, 0, 0, used_d, reset_d, used_mo, reset_mo, day_s, ym}
for _, b in ipairs(buckets) do
  local i = b[1] == 's' and 4 or 6
  out[i] = math.floor(credit[b[1]] / b[4])
  out[i + 1] = math.ceil((b[3] * b[4] - credit[b[1]]) / b[2] / 1000)
end
return out
