"""limiter.lua's cheap paths, on a real Redis, say exactly what its full paths say: the
caller's month end (ARGV[16]) is taken only for today on Redis time; a single admission
counted first and taken back on a used-up quota leaves the counters as they were (no
counter created, none left without its TTL); a refusal writes nothing, and the next call
sees the same buckets it would have seen had the refusal been saved."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import redis

from gateway import contract
from gateway.exceptions import Reject
from gateway.policies.rate_limit import policy as rate_limit
from gateway.policies.rate_limit.policy import LUA, RateLimitPolicy, calendar, limiter_keys, month_end
from gateway.policies.rate_limit.schema import RateLimitSettings
from gateway.redis_mux import MuxRedis
from gateway.state import RedisHealth
from gateway.types import RequestContext
from tests.gateway.test_it_counts_quota_per_utc_calendar import next_month_start


def call(client: redis.Redis, subscription_id: int, *, per_s: int = 0, burst: int = 0, per_m: int = 0,
         day_quota: int = 0, month_quota: int = 0, ends: int | str | None = "auto",
         when: float | None = None) -> list:
    """One admission, as policy.py asks for it (ARGV[16] = where the month ends) unless
    ``ends`` says otherwise (None: the old 15-argument call)."""
    day, month = calendar(time.time() if when is None else when)
    keys = limiter_keys(subscription_id, day, month)
    args: list[object] = ["a", day, month, per_s, max(per_s, burst) if per_s else 0, per_m, per_m, day_quota,
                          month_quota, 1, "", 0, 4, "", 0]
    if ends == "auto":
        args.append(month_end(int(day)))
    elif ends is not None:
        args.append(ends)
    return client.eval(LUA, len(keys), *keys, *args)


def test_month_end_is_the_first_day_of_the_next_month():
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for start in (datetime(2024, 2, 28, tzinfo=UTC), datetime(2026, 12, 30, tzinfo=UTC),
                  datetime(2100, 2, 27, tzinfo=UTC)):
        for n in range(5):
            date = start + timedelta(days=n)
            assert month_end((date - epoch).days) == (next_month_start(date) - epoch).days, date


def test_the_callers_month_end_gives_the_replies_the_script_s_own_calendar_gives(redis_client):
    own = call(redis_client, 4301, day_quota=10, month_quota=100, ends=None)
    given = call(redis_client, 4301, day_quota=10, month_quota=100)
    assert own[0] == given[0] == 0
    assert (own[7], own[9], given[7], given[9]) == (1, 1, 2, 2)
    assert abs(own[8] - given[8]) <= 1
    assert abs(own[10] - given[10]) <= 1
    day, month = calendar(time.time())
    assert own[11:] == [day.encode(), month.encode()]
    assert len(given) == 11  # the caller named the day and month itself: not repeated
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    assert abs(given[10] - (next_month_start(now).timestamp() - now.timestamp())) <= 2


def test_a_month_end_that_cannot_be_this_month_s_is_not_taken(redis_client):
    day, _ = calendar(time.time())
    right = call(redis_client, 4302, month_quota=100)
    for wrong in (int(day), int(day) + 40, int(day) - 3, ""):
        reply = call(redis_client, 4302, month_quota=100, ends=wrong)
        assert reply[0] == 0
        assert abs(reply[10] - right[10]) <= 2  # the script's own calendar, not the caller's


def test_a_caller_on_another_date_is_told_redis_s_date_even_with_its_month_end(redis_client):
    yesterday = time.time() - 86400
    reply = call(redis_client, 4303, per_s=5, day_quota=5, when=yesterday)
    today, month = calendar(time.time())
    assert reply == [-1, today.encode(), month.encode()]
    assert redis_client.keys("*{s:4303}*") == []


def test_a_used_up_month_takes_back_the_count_without_creating_a_day_counter(redis_client):
    day, month = calendar(time.time())
    _, day_key, month_key = limiter_keys(4304, day, month)
    redis_client.set(month_key, 5, ex=3600)
    reply = call(redis_client, 4304, day_quota=100, month_quota=5)
    assert (reply[0], reply[2], reply[7], reply[9]) == (2, 0, 0, 5)
    assert redis_client.exists(day_key) == 0  # created by the count, gone with it
    assert int(redis_client.get(month_key)) == 5
    assert 3500 < redis_client.ttl(month_key) <= 3600  # untouched


def test_a_day_counter_at_zero_stays_at_zero_with_its_ttl(redis_client):
    # A counter can hold 0 (a lease's unused admissions all given back): taking back a
    # count must leave it so, TTL included, not delete it and not leave it without one.
    day, month = calendar(time.time())
    _, day_key, month_key = limiter_keys(4305, day, month)
    redis_client.set(day_key, 0, ex=7200)
    redis_client.set(month_key, 7, ex=3600)
    reply = call(redis_client, 4305, day_quota=100, month_quota=7)
    assert reply[0] == 2
    assert redis_client.get(day_key) == b"0"
    assert 7100 < redis_client.ttl(day_key) <= 7200
    assert int(redis_client.get(month_key)) == 7


def test_a_used_up_day_leaves_both_counters_as_they_were(redis_client):
    day, month = calendar(time.time())
    _, day_key, month_key = limiter_keys(4306, day, month)
    for _ in range(3):
        assert call(redis_client, 4306, day_quota=3, month_quota=100)[0] == 0
    for _ in range(5):
        reply = call(redis_client, 4306, day_quota=3, month_quota=100)
        assert (reply[0], reply[7], reply[9]) == (2, 3, 3)
    assert (int(redis_client.get(day_key)), int(redis_client.get(month_key))) == (3, 3)
    assert redis_client.ttl(day_key) > 86400
    assert redis_client.ttl(month_key) > 86400


def test_a_refusal_writes_nothing_and_the_bucket_refills_from_the_last_admission(redis_client):
    day, month = calendar(time.time())
    state_key = limiter_keys(4307, day, month)[0]
    # 2/s with a burst of 10: ten at once, then one every 500 ms.
    assert sum(1 for _ in range(12) if call(redis_client, 4307, per_s=2, burst=10, per_m=600)[0] == 0) == 10
    saved, ttl = redis_client.hgetall(state_key), redis_client.pttl(state_key)
    refused = call(redis_client, 4307, per_s=2, burst=10, per_m=600)
    assert refused[0] == 1
    assert 0 < refused[1] <= 500
    assert redis_client.hgetall(state_key) == saved  # not rewritten
    assert 0 < redis_client.pttl(state_key) <= ttl  # nor its expiry pushed back
    time.sleep(0.6)  # one more, counted from the last admission, as a saved refusal would count it
    assert sum(1 for _ in range(10) if call(redis_client, 4307, per_s=2, burst=10, per_m=600)[0] == 0) == 1


def test_a_gateway_a_day_behind_redis_retries_with_redis_s_day_and_month_end(redis_client, gw_redis, monkeypatch):
    # The policy's own calendar names yesterday (its clock is behind, at midnight): Redis
    # names today, and the policy asks again with today's keys and today's month end.
    real_time = time.time

    class Behind:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def time() -> float:
            return real_time() - 86400

    monkeypatch.setattr(rate_limit, "time", Behind)
    limits = contract.Limits(rate_per_second=10, quota_per_day=5, quota_per_month=50)

    async def admit_once() -> RateLimitPolicy:
        handle = MuxRedis(gw_redis.url, timeout=5.0)
        policy = RateLimitPolicy(handle, RedisHealth(), RateLimitSettings())
        grant = contract.SubscriptionGrant(subscription_id=4308, api_id=1, plan_id=1, plan_slug="p",
                                           status="active", limits=limits)
        ctx = RequestContext(request=None, request_id="r", event_id="e")  # type: ignore[arg-type]
        ctx.grant, ctx.limits = grant, limits
        try:
            await policy.access(ctx)
        finally:
            await handle.close()
        assert ctx.limit_state is not None
        remaining = {name: left for name, _, _, left, _ in ctx.limit_state.policies}
        assert remaining == {"second": 9, "day": 4, "month": 49}
        return policy

    policy = asyncio.run(admit_once())
    today, month = calendar(real_time())
    assert policy._calendar == (int(today), today, month, month_end(int(today)))
    assert int(redis_client.get(limiter_keys(4308, today, month)[1])) == 1
    yesterday, _ = calendar(real_time() - 86400)
    assert not redis_client.keys(f"*:q:d:{yesterday}")


def test_the_encoded_call_follows_a_plan_change_at_once(redis_client, gw_redis):
    # The policy encodes a subscription's single-admission call once: a new plan (new
    # limits) must be encoded again at its first request, not sent under the old numbers.
    async def admitted(policy: RateLimitPolicy, limits: contract.Limits, n: int) -> int:
        grant = contract.SubscriptionGrant(subscription_id=4309, api_id=1, plan_id=1, plan_slug="p",
                                           status="active", limits=limits)
        count = 0
        for _ in range(n):
            ctx = RequestContext(request=None, request_id="r", event_id="e")  # type: ignore[arg-type]
            ctx.grant, ctx.limits = grant, limits
            try:
                await policy.access(ctx)
                count += 1
            except Reject:
                pass
        return count

    async def run() -> tuple[int, int, int]:
        handle = MuxRedis(gw_redis.url, timeout=5.0)
        policy = RateLimitPolicy(handle, RedisHealth(), RateLimitSettings())
        try:
            first = await admitted(policy, contract.Limits(rate_per_minute=8), 3)
            # The bucket keeps its credit, capped at the new depth: 3 of the 5 left, not 5.
            smaller = await admitted(policy, contract.Limits(rate_per_minute=3), 10)
            # No rate any more, a day quota of 16 with 6 used: 10 more, not the empty bucket's 0.
            quota_only = await admitted(policy, contract.Limits(quota_per_day=16), 12)
        finally:
            await handle.close()
        return first, smaller, quota_only

    assert asyncio.run(run()) == (3, 3, 10)
