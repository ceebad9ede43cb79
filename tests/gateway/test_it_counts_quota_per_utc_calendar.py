"""The limiter script on Redis time: the day and month quota windows are the UTC calendar
day and month, every key of a subscription is passed in KEYS and shares one Redis Cluster
slot, and a caller whose clock names another day is told the right one."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis
from redis.crc import key_slot

from gateway.policies.rate_limit.policy import LUA, calendar, limiter_keys


def next_month_start(now: datetime) -> datetime:
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)


def admit(client: redis.Redis, subscription_id: int, *, per_s: int = 0, burst: int = 0, per_m: int = 0,
          day_quota: int = 0, month_quota: int = 0, want: int = 1, lease: str = "", lease_us: int = 500_000,
          settle: str = "", unused: int = 0, when: float | None = None) -> list:
    day, month = calendar(time.time() if when is None else when)
    keys = limiter_keys(subscription_id, day, month)
    args = ["a", day, month, per_s, max(per_s, burst) if per_s else 0, per_m, per_m, day_quota, month_quota,
            want, lease, lease_us, 4, settle, unused]
    return client.eval(LUA, len(keys), *keys, *args)


def test_quota_windows_are_the_utc_day_and_month(redis_client):
    result = admit(redis_client, 4242, day_quota=10, month_quota=100)
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    denied, _, granted, _, _, _, _, used_d, reset_d, used_mo, reset_mo, day, month = result

    assert (denied, granted) == (0, 1)
    assert (used_d, used_mo) == (1, 1)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp() + 86400
    assert abs(reset_d - (midnight - now.timestamp())) <= 2
    assert abs(reset_mo - (next_month_start(now).timestamp() - now.timestamp())) <= 2
    assert (day, month) == (str(int(now.timestamp()) // 86400).encode(), f"{now:%Y%m}".encode())
    names = {k.decode() for k in redis_client.keys("*{s:4242}*")}
    assert names == set(limiter_keys(4242, day.decode(), month.decode())[1:])  # quota only: no bucket state


def test_every_key_of_a_subscription_is_in_keys_and_in_one_cluster_slot(redis_client):
    admit(redis_client, 77, per_s=5, per_m=5, day_quota=5, month_quota=5, want=3, lease="w1")
    written = set(redis_client.keys("*{s:77}*"))
    day, month = calendar(time.time())
    assert written == {k.encode() for k in limiter_keys(77, day, month)}  # bucket state, day, month
    assert len({key_slot(k) for k in written}) == 1


def test_a_caller_on_another_date_is_told_redis_s_date_and_nothing_is_counted(redis_client):
    result = admit(redis_client, 78, per_s=5, day_quota=5, when=time.time() - 2 * 86400)
    today, month = calendar(time.time())
    assert result[0] == -1
    assert (result[1], result[2]) == (today.encode(), month.encode())
    assert redis_client.keys("*{s:78}*") == []


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
