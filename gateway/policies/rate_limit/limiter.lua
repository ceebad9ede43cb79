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
--      a previous lease to settle first: its id and how many of it went unused ('' = none),
--      ARGV[16] (optional) the epoch day the caller's month ends (the next month's first
--      day). With it, and ARGV[2] today on Redis time, the script takes the caller's
--      calendar (reset_mo from ARGV[16], day and yyyymm from ARGV[2], ARGV[3]) and skips its
--      own; without it, or on another day, it works the month out and checks both names.
-- 'r': ARGV[8] lease id, ARGV[9] how many of it went unused.
--
-- 'a' returns {denied, retry_after_ms, granted, left_s, full_s_ms, left_m, full_m_ms,
--              used_d, reset_d_s, used_mo, reset_mo_s, day, yyyymm} (without day and
--              yyyymm when the caller passed ARGV[16]: a shorter reply is cheaper)
--   denied: 0 admitted, 1 rate limited, 2 quota exhausted. granted: admissions taken
--   (this request plus the lease), 0 when denied; nothing is consumed then. left_*: whole
--   admissions left in each bucket; full_*_ms: until that bucket is full again.
--   A refusal while leases of other holders are live ends with one more element,
--   lease_wait_ms: until the last of them ends here (their unused part is back by then).
-- 'r' returns {settled} (1 if the lease was still live and its unused part went back).
--
-- Leases are exact because held admissions stay in the bucket's books: a bucket never
-- refills above depth - held (credit + held <= depth at all times), so whether the holder
-- uses its admissions now or later, no interval of length t ever sees more than
-- depth + rate * t admitted across the fleet. A lease ends at its expiry here; the holder
-- stops using it earlier (its own clock starts before this script runs).
--
-- Cost (bench/limiter_cost.py; each redis.call costs Redis up to a microsecond of CPU, and
-- formatting a number a few hundred nanoseconds): with no lease in the hash (leases off)
-- the lease work is skipped; one admission (no lease asked) is counted with one INCRBY per
-- counter, taken back if a quota turns out used up; a refusal that changes nothing
-- writes nothing.

local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs * 1000000 + tonumber(t[2])
local op = ARGV[1]
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min

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

local day = floor(secs / 86400)
local reset_d, reset_mo = (day + 1) * 86400 - secs, 0
if op == 'a' then
  -- The caller's calendar, checked against Redis time: its day must be today and the
  -- month's end it names must lie within a month after today. Else (no ARGV[16], or a
  -- caller at midnight) the script works the month out itself and checks both names.
  local month_end = tonumber(ARGV[16] or '')
  if month_end and tonumber(ARGV[2]) == day and month_end > day and month_end <= day + 31 then
    reset_mo = month_end * 86400 - secs
  else
    local y, m = civil(day)
    local ny, nm = y, m + 1
    if nm > 12 then ny, nm = y + 1, 1 end
    local ym = string.format('%04d%02d', y, m)
    local day_s = string.format('%d', day)
    if ARGV[2] ~= day_s or ARGV[3] ~= ym then
      return {-1, day_s, ym}
    end
    reset_mo = days_from_civil(ny, nm, 1) * 86400 - secs
  end
end

-- The buckets: {field, rate, depth, window us, credit}. Credits are whole numbers below
-- 2^53 for any depth up to 150 million per minute, so the arithmetic is exact, and they
-- are stored exactly (save() writes them with '%d').
local buckets = {}
local rate = tonumber(ARGV[4])
if rate > 0 then buckets[1] = {'s', rate, max(rate, tonumber(ARGV[5])), 1000000, 0} end
rate = tonumber(ARGV[6])
if rate > 0 then buckets[#buckets + 1] = {'m', rate, max(rate, tonumber(ARGV[7])), 60000000, 0} end

-- Load the state, then bring every bucket forward to now, one lease expiry at a time:
-- between two events the cap is depth - held, and it rises when a lease ends.
-- A lease's record outlives its end by GRACE_US: a holder that could not settle in time
-- (Redis was away) can still give back the quota it did not use.
local GRACE_US = 30000000
local raw = redis.call('HGETALL', KEYS[1])
local st = {}
local nleases = 0  -- 'h:<id>' fields in the hash: with none (leases off) all lease work is skipped
for i = 1, #raw, 2 do
  local f = raw[i]
  st[f] = raw[i + 1]
  if string.byte(f, 1) == 104 then nleases = nleases + 1 end  -- 'h'
end
local last = tonumber(st['t'] or '')
local held = 0
local leases = {}
local dirty = false  -- whether the state must be written back
local function parse(v)
  local sp = string.find(v, ' ', 1, true)
  return tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1))
end
if nleases > 0 then
  for f, v in pairs(st) do
    if string.byte(f, 1) == 104 then
      local n, e = parse(v)
      if last == nil or e > last then  -- still held at the last update
        held = held + n
        leases[#leases + 1] = {e, n}
      end
      if e + GRACE_US <= now then
        redis.call('HDEL', KEYS[1], f)
        st[f] = nil
        nleases = nleases - 1
        dirty = true
      end
    end
  end
  if #leases > 1 then table.sort(leases, function(a, b) return a[1] < b[1] end) end
end

local function refill(b, dt)
  local cap = (b[3] - held) * b[4]
  if cap < 0 then cap = 0 end
  local c = b[5]
  if c >= cap then return cap end
  if dt <= 0 then return c end
  if dt >= (cap - c) / b[2] then return cap end
  return c + b[2] * dt
end

for _, b in ipairs(buckets) do
  b[5] = last and tonumber(st[b[1]] or '') or b[3] * b[4]
end
local cur = last or now
for _, lease in ipairs(leases) do
  if lease[1] > now then break end
  for _, b in ipairs(buckets) do b[5] = refill(b, lease[1] - cur) end
  if lease[1] > cur then cur = lease[1] end
  held = held - lease[2]
end
for _, b in ipairs(buckets) do b[5] = refill(b, now - cur) end

-- Settle a lease: its unused admissions go back to the quota counters, and, while the
-- lease is live, to the bucket (after its end they can no longer be told from used ones).
local function settle(id, unused, day_key, month_key)
  local f = 'h:' .. id
  local v = st[f]
  if v == nil then return 0 end
  local n, e = parse(v)
  unused = max(0, min(unused, n))
  redis.call('HDEL', KEYS[1], f)
  st[f] = nil
  nleases = nleases - 1
  if e > now then
    held = held - n
    for _, b in ipairs(buckets) do
      b[5] = min(b[5] + unused * b[4], max(0, (b[3] - held) * b[4]))
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
  local nb = #buckets
  if nb == 0 and nleases == 0 then
    -- Quota only and nothing held: no state to keep (a plan may have dropped its rates).
    if #raw > 0 then redis.call('DEL', KEYS[1]) end
    return
  end
  local refill_us, lease_us = 0, 0
  for _, b in ipairs(buckets) do
    refill_us = max(refill_us, (b[3] * b[4] - b[5]) / b[2])
  end
  if nleases > 0 then
    for f, v in pairs(st) do
      if string.byte(f, 1) == 104 then
        local _, e = parse(v)
        lease_us = max(lease_us, e + GRACE_US - now)
      end
    end
  end
  -- Whole numbers, written with '%d' (64-bit integers: exact, and about half the cost of
  -- the 17 significant digits Redis would print a Lua number with).
  local fmt = string.format
  if nb == 2 then
    redis.call('HSET', KEYS[1], 't', fmt('%d', now), 's', fmt('%d', buckets[1][5]), 'm', fmt('%d', buckets[2][5]))
  elseif nb == 1 then
    redis.call('HSET', KEYS[1], 't', fmt('%d', now), buckets[1][1], fmt('%d', buckets[1][5]))
  else
    redis.call('HSET', KEYS[1], 't', fmt('%d', now))
  end
  -- Once the last lease has ended and every bucket has refilled, the state says nothing a
  -- fresh one would not: let it go, so an idle subscription costs no memory.
  redis.call('PEXPIRE', KEYS[1], fmt('%d', ceil((lease_us + refill_us) / 1000) + 1000))
end

if op == 'r' then
  local settled = settle(ARGV[8], tonumber(ARGV[9]), KEYS[2], KEYS[3])
  save()
  return {settled}
end

if #buckets == 0 and #raw > 0 then dirty = true end  -- quota only now: the old state goes
if ARGV[14] ~= '' then
  settle(ARGV[14], tonumber(ARGV[15]), KEYS[2], KEYS[3])
  dirty = true
end

local quota_d = tonumber(ARGV[8])
local quota_mo = tonumber(ARGV[9])
local want = tonumber(ARGV[10])
local rate_ok = true
for _, b in ipairs(buckets) do
  if b[5] < b[4] then rate_ok = false end
end
-- The quota counters as they were before this request. When one admission is all that
-- is asked and every bucket has it, count it at once (one INCRBY per counter instead of a
-- GET and an INCRBY) and take it back if a quota was used up: the script is atomic, so
-- nobody sees the step between, and a refused request still consumes nothing.
local used_d, used_mo
local counted = false
if rate_ok and want <= 1 then
  used_d = redis.call('INCRBY', KEYS[2], '1') - 1
  used_mo = redis.call('INCRBY', KEYS[3], '1') - 1
  counted = true
  if (quota_d > 0 and used_d >= quota_d) or (quota_mo > 0 and used_mo >= quota_mo) then
    -- Undo exactly: a counter this INCRBY created (no TTL) goes, one that held 0 stays 0.
    for k, before in pairs({[KEYS[2]] = used_d, [KEYS[3]] = used_mo}) do
      if before == 0 and redis.call('PTTL', k) < 0 then
        redis.call('DEL', k)
      else
        redis.call('DECRBY', k, '1')
      end
    end
    counted = false
  end
else
  used_d = tonumber(redis.call('GET', KEYS[2]) or '0')
  used_mo = tonumber(redis.call('GET', KEYS[3]) or '0')
end

local denied = 0
local retry_ms = 0
if quota_d > 0 and used_d >= quota_d then
  denied = 2
  retry_ms = reset_d * 1000
end
if quota_mo > 0 and used_mo >= quota_mo then
  denied = 2
  retry_ms = max(retry_ms, reset_mo * 1000)
end
-- A bucket that cannot admit one now (less than a whole admission's credit) refuses.
for _, b in ipairs(buckets) do
  if b[5] < b[4] and denied ~= 2 then
    denied = 1
    retry_ms = max(retry_ms, ceil((b[4] - b[5]) / b[2] / 1000))
  end
end

local granted = 0
if denied == 0 then
  -- This request, plus a lease of at most 1/divisor of what is left after it in every
  -- dimension (whole admissions): leases shrink near the limit and vanish close to it.
  local extra = want - 1
  if extra > 0 then
    local divisor = tonumber(ARGV[13])
    for _, b in ipairs(buckets) do extra = min(extra, floor((floor(b[5] / b[4]) - 1) / divisor)) end
    if quota_d > 0 then extra = min(extra, floor((quota_d - used_d - 1) / divisor)) end
    if quota_mo > 0 then extra = min(extra, floor((quota_mo - used_mo - 1) / divisor)) end
  end
  if extra < 0 then extra = 0 end
  granted = 1 + extra
  for _, b in ipairs(buckets) do b[5] = b[5] - granted * b[4] end
  if extra > 0 then
    local f = 'h:' .. ARGV[11]
    local v = extra .. ' ' .. string.format('%.0f', now + tonumber(ARGV[12]))
    redis.call('HSET', KEYS[1], f, v)
    if st[f] == nil then nleases = nleases + 1 end
    st[f] = v
    held = held + extra
  end
  if counted then
    used_d, used_mo = used_d + 1, used_mo + 1
  else
    used_d = redis.call('INCRBY', KEYS[2], granted)
    used_mo = redis.call('INCRBY', KEYS[3], granted)
  end
  if used_d == granted then redis.call('EXPIRE', KEYS[2], reset_d + 86400) end
  if used_mo == granted then redis.call('EXPIRE', KEYS[3], reset_mo + 86400) end
  dirty = true
end
-- A refusal changes nothing: the state as loaded, brought forward to any later time, says
-- what it says now (refilling is a function of the time since the last update).
if dirty then save() end

-- A refusal while other holders' leases are live (the caller's own lease, settled above,
-- is gone from st): their unused admissions come back when they settle, at the latest
-- when they end here. Say when the last of them ends, so the caller can ask once more
-- then instead of refusing early.
local wait_us = 0
if denied ~= 0 and nleases > 0 then
  for f, v in pairs(st) do
    if string.byte(f, 1) == 104 then
      local _, e = parse(v)
      if e - now > wait_us then wait_us = e - now end
    end
  end
end

local out = {denied, retry_ms, granted, 0, 0, 0, 0, used_d, reset_d, used_mo, reset_mo}
if ARGV[16] == nil then out[12], out[13] = ARGV[2], ARGV[3] end  -- a caller that passed them knows them
for _, b in ipairs(buckets) do
  local i = b[1] == 's' and 4 or 6
  out[i] = floor(b[5] / b[4])
  out[i + 1] = ceil((b[3] * b[4] - b[5]) / b[2] / 1000)
end
if wait_us > 0 then out[#out + 1] = ceil(wait_us / 1000) end
return out
