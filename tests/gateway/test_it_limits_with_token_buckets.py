"""The limiter's GCRA buckets, called the way the gateway calls them, on a real Redis:
burst is the per-second bucket's depth, refusals consume nothing, leases are held in the
bucket's books (so nothing is ever admitted twice) and the state is O(1) per subscription."""

from __future__ import annotations

import time

import redis

from gateway.policies.rate_limit.policy import LUA, calendar, limiter_keys
from tests.gateway.test_it_counts_quota_per_utc_calendar import admit


def burst_of(client: redis.Redis, n: int, **limits: int) -> list[list]:
    """n admissions within a millisecond or so: one pipeline, evaluated back to back."""
    day, month = calendar(time.time())
    keys = limiter_keys(limits.pop("sub"), day, month)
    per_s, burst, per_m = limits.get("per_s", 0), limits.get("burst", 0), limits.get("per_m", 0)
    args = ["a", day, month, per_s, max(per_s, burst) if per_s else 0, per_m, per_m,
            limits.get("day_quota", 0), 0, 1, "", 0, 4, "", 0]
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.eval(LUA, len(keys), *keys, *args)
    return pipe.execute()


def admitted(replies: list[list]) -> int:
    return sum(1 for r in replies if r[0] == 0)


def test_burst_20_on_10_per_second_admits_20_at_once_then_10_a_second(redis_client):
    assert admitted(burst_of(redis_client, 50, sub=601, per_s=10, burst=20)) == 20
    time.sleep(1.0)
    assert admitted(burst_of(redis_client, 50, sub=601, per_s=10, burst=20)) == 10
    time.sleep(0.5)
    assert admitted(burst_of(redis_client, 50, sub=601, per_s=10, burst=20)) == 5


def test_without_burst_a_bucket_holds_one_window(redis_client):
    assert admitted(burst_of(redis_client, 30, sub=602, per_s=10)) == 10
    assert admitted(burst_of(redis_client, 300, sub=603, per_m=120)) == 120
    time.sleep(1.0)  # a 120/min bucket refills two a second
    assert admitted(burst_of(redis_client, 30, sub=603, per_m=120)) == 2


def test_refusals_consume_nothing(redis_client):
    replies = burst_of(redis_client, 40, sub=604, per_s=5, day_quota=1000)
    assert admitted(replies) == 5
    refused = [r for r in replies if r[0] != 0]
    assert all(r[0] == 1 and 0 < r[1] <= 200 for r in refused)  # Retry-After: the next token, 1/5 s
    day, month = calendar(time.time())
    assert int(redis_client.get(limiter_keys(604, day, month)[1])) == 5  # quota: the 5 admitted only
    # A quota refusal takes no token either: the bucket still has its 5 after a rest.
    time.sleep(1.0)
    replies = burst_of(redis_client, 10, sub=604, per_s=5, day_quota=5)
    assert [r[0] for r in replies] == [2] * 10
    replies = burst_of(redis_client, 10, sub=604, per_s=5, day_quota=1000)
    assert admitted(replies) == 5


def test_the_headers_come_from_the_bucket(redis_client):
    first = burst_of(redis_client, 1, sub=605, per_s=10, burst=20)[0]
    assert first[3] == 19  # left in the bucket
    assert 0 < first[4] <= 100  # ms until it is full again: one token at 10/s
    last = burst_of(redis_client, 19, sub=605, per_s=10, burst=20)[-1]
    assert last[3] == 0
    assert 1900 <= last[4] <= 2000


def test_a_lease_takes_from_the_bucket_and_settling_returns_the_rest(redis_client):
    # Depth 100, refilling slowly (1/s) so that the test's own pace does not matter: this
    # request plus a lease of up to 1/4 of what is left, capped by the ask.
    reply = admit(redis_client, 606, per_s=1, burst=100, want=31, lease="a")
    assert (reply[0], reply[2]) == (0, 25)  # 1 + 99 // 4
    assert reply[3] == 75
    # Everyone else sees only what is left: 75, never the 24 held.
    assert admitted(burst_of(redis_client, 100, sub=606, per_s=1, burst=100)) == 75
    # Settling with 10 unused gives those 10 back, and only those.
    admit_reply = admit(redis_client, 606, per_s=1, burst=100, want=1, settle="a", unused=10)
    assert admit_reply[0] == 0
    assert admit_reply[3] == 9  # 10 returned, one taken by this call
    # Settling twice gives nothing more.
    again = admit(redis_client, 606, per_s=1, burst=100, want=1, settle="a", unused=10)
    assert again[3] == 8


def test_held_admissions_keep_the_bucket_from_refilling_past_its_depth(redis_client):
    # 10/s, depth 10: lease 1 + 2 (a quarter of the 9 left), wait until the bucket
    # would be full again: the bucket holds 10 - 2 held, never 10 on top of a lease.
    reply = admit(redis_client, 607, per_s=10, want=100, lease="b", lease_us=5_000_000)
    assert reply[2] == 3
    time.sleep(1.2)
    assert admitted(burst_of(redis_client, 30, sub=607, per_s=10)) == 8


def test_an_expired_lease_gives_nothing_back_to_the_bucket(redis_client):
    reply = admit(redis_client, 608, per_s=10, burst=40, want=100, lease="c", lease_us=100_000)
    assert reply[2] == 10  # 1 + (39 // 4 = 9)
    assert admitted(burst_of(redis_client, 100, sub=608, per_s=10, burst=40)) == 30
    time.sleep(0.2)
    # Too late: the lease has ended in Redis, its holder stopped using it before then, so
    # its unused admissions are gone (they cannot be told from used ones any more).
    late = admit(redis_client, 608, per_s=10, burst=40, settle="c", unused=9)
    assert late[0] == 0
    assert late[3] <= 2  # only the ~2 refilled in 0.2 s, not 9 more


def test_a_late_settlement_still_gives_back_the_unused_quota(redis_client):
    # Redis was away when the lease ended: the holder settles late. The bucket gets nothing
    # back, but the quota counters do, so they count what was admitted and no more.
    day, month = calendar(time.time())
    day_key = limiter_keys(611, day, month)[1]
    reply = admit(redis_client, 611, per_s=10, burst=40, day_quota=1000, want=100, lease="d", lease_us=100_000)
    assert reply[2] == 10
    time.sleep(0.3)
    assert int(redis_client.get(day_key)) == 10
    late = admit(redis_client, 611, per_s=10, burst=40, day_quota=1000, settle="d", unused=6)
    assert late[0] == 0
    assert int(redis_client.get(day_key)) == 10 - 6 + 1


def test_memory_per_subscription_is_constant(redis_client):
    # A 10,000/min plan driven to its limit: 1,000s of admissions, three small keys.
    for _ in range(5):
        burst_of(redis_client, 3000, sub=609, per_m=10_000, day_quota=10**9)
    day, month = calendar(time.time())
    total = sum(redis_client.memory_usage(k) or 0 for k in limiter_keys(609, day, month))
    assert total <= 1024, total
    assert len(redis_client.keys("*{s:609}*")) == 3


def test_settling_a_lease_refunds_its_unused_quota(redis_client):
    day, month = calendar(time.time())
    day_key, month_key = limiter_keys(610, day, month)[1:]
    reply = admit(redis_client, 610, day_quota=1000, month_quota=10_000, want=9, lease="q")
    assert reply[2] == 9
    assert int(redis_client.get(day_key)) == 9  # the lease is counted while it is held
    keys = limiter_keys(610, day, month)
    assert redis_client.eval(LUA, 3, *keys, "r", day, month, 0, 0, 0, 0, "q", 5) == [1]
    assert (int(redis_client.get(day_key)), int(redis_client.get(month_key))) == (4, 4)
    # Settled once only.
    assert redis_client.eval(LUA, 3, *keys, "r", day, month, 0, 0, 0, 0, "q", 5) == [0]
    assert int(redis_client.get(day_key)) == 4
    assert redis_client.exists(keys[0]) == 0  # quota only, nothing held: no state left behind
