"""The limiter script on Redis time: the day and month quota windows are the UTC calendar
day and month, and every counter of a subscription shares one Redis Cluster slot."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redis.crc import key_slot

from gateway.policies.rate_limit.policy import LUA, counter_keys


def next_month_start(now: datetime) -> datetime:
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)


def test_quota_windows_are_the_utc_day_and_month(redis_client):
    keys = counter_keys(4242)
    result = redis_client.eval(LUA, len(keys), *keys, "member-1", 0, 0, 10, 100)
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    denied, _, _, _, _, _, used_d, reset_d, used_mo, reset_mo = result

    assert denied == 0
    assert (used_d, used_mo) == (1, 1)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp() + 86400
    assert abs(reset_d - (midnight - now.timestamp())) <= 2
    assert abs(reset_mo - (next_month_start(now).timestamp() - now.timestamp())) <= 2
    names = {k.decode() for k in redis_client.keys("*{s:4242}*")}
    assert f"{keys[2]}:d:{int(now.timestamp()) // 86400}" in names
    assert f"{keys[2]}:m:{now:%Y%m}" in names


def test_every_counter_of_a_subscription_is_in_one_cluster_slot(redis_client):
    keys = counter_keys(77)
    redis_client.eval(LUA, len(keys), *keys, "m", 5, 5, 5, 5)
    written = redis_client.keys("*{s:77}*")
    assert len(written) == 4  # second log, minute log, day counter, month counter
    assert len({key_slot(k) for k in written}) == 1
    assert {key_slot(k) for k in written} == {key_slot(k.encode()) for k in keys}


def test_calendar_arithmetic_matches_python_across_leap_years_and_new_year(redis_client):
    functions = LUA[LUA.index("local function civil") : LUA.index("local day = ")]
    probe = functions + """
local out = {}
for _, d in ipairs(ARGV) do
  local y, m = civil(tonumber(d))
  local ny, nm = y, m + 1
  if nm > 12 then ny, nm = y + 1, 1 end
  out[#out + 1] = y * 100 + m
  out[#out + 1] = days_from_civil(ny, nm, 1)
end
return out
"""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    days = list(range(19_700, 21_200, 7))  # 2023-12 .. 2028-01, weekly
    days += [19_782, 19_783, 19_723, 19_722, 47_540, 47_541, 47_482]  # 2024-02-29/03-01, new year, 2100
    result = redis_client.eval(probe, 0, *days)
    for i, day in enumerate(days):
        date = datetime.fromtimestamp(day * 86400, tz=UTC)
        assert result[2 * i] == date.year * 100 + date.month, date
        assert result[2 * i + 1] == (next_month_start(date) - epoch).days, date
