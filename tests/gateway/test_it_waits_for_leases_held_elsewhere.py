"""No early 429 because of admission leases another worker holds: a refusal made while
other holders' leases are live in Redis waits until they end there (at most
2 x GATEWAY_RATE_LIMIT_LEASE_MS, plus a little) and asks once more; by then the holders
have settled and their unused admissions are back. A quota truly used up is still refused
(after that bounded wait), and a refusal with no other lease outstanding is immediate.

Two RateLimitPolicy instances on their own Redis connections are two workers; the
limiter is called as the gateway calls it, on a real Redis."""

from __future__ import annotations

import asyncio
import time

import redis

from gateway import contract
from gateway.exceptions import Reject
from gateway.policies.rate_limit.policy import LEASE_WAIT_SLACK_S, RateLimitPolicy
from gateway.policies.rate_limit.schema import RateLimitSettings
from gateway.redis_mux import MuxRedis
from gateway.state import RedisHealth
from gateway.types import RequestContext
from tests.gateway.test_it_counts_quota_per_utc_calendar import admit

LEASE_MS = 250
BOUND_S = 2 * LEASE_MS / 1000 + LEASE_WAIT_SLACK_S


def grant(subscription_id: int, limits: contract.Limits) -> contract.SubscriptionGrant:
    return contract.SubscriptionGrant(subscription_id=subscription_id, api_id=1, plan_id=1, plan_slug="p",
                                      status="active", limits=limits)


async def request(policy: RateLimitPolicy, sub: contract.SubscriptionGrant) -> tuple[bool, float]:
    """One request through the limiter: (admitted, seconds it took)."""
    ctx = RequestContext(request=None, request_id="r", event_id="e")  # type: ignore[arg-type]
    ctx.grant, ctx.limits = sub, sub.limits
    started = time.monotonic()
    try:
        await policy.access(ctx)
        return True, time.monotonic() - started
    except Reject as reject:
        if reject.status != 429:
            raise
        return False, time.monotonic() - started


class Workers:
    """Two limiter instances, each a worker with its own connection and lease sweeper."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> tuple[RateLimitPolicy, RateLimitPolicy]:
        self.handles = [MuxRedis(self.url, timeout=5.0) for _ in range(2)]
        self.policies = [RateLimitPolicy(h, RedisHealth(), RateLimitSettings(lease_ms=LEASE_MS)) for h in self.handles]
        for policy in self.policies:
            await policy.start()
        return self.policies[0], self.policies[1]

    async def __aexit__(self, *exc: object) -> None:
        for policy in self.policies:
            await policy.stop()
        for handle in self.handles:
            await handle.close()


async def hold_a_lease(worker: RateLimitPolicy, sub: contract.SubscriptionGrant) -> int:
    """Busy requests on ``worker`` until it holds a lease; returns how many it admitted."""
    admitted = 0
    for _ in range(50):
        ok, _ = await request(worker, sub)
        admitted += ok
        lease = worker.leases.get(sub.subscription_id)
        if lease is not None and lease.left > 0:
            return admitted
    raise AssertionError("no lease was taken")


def test_the_reply_names_the_wait_only_for_other_holders_live_leases(redis_client: redis.Redis):
    # Day quota 9: this request plus a lease of 2 (a quarter of the 8 left), then the rest.
    assert admit(redis_client, 5101, day_quota=9, want=100, lease="a")[2] == 3
    for _ in range(6):
        assert admit(redis_client, 5101, day_quota=9)[0] == 0
    refused = admit(redis_client, 5101, day_quota=9)
    # 13 elements (no ARGV[16]: day and yyyymm), then the wait for lease "a".
    assert refused[0] == 2
    assert len(refused) == 14
    assert 0 < refused[13] <= 500
    # The holder's own lease, settled in the same call, does not count: an immediate answer.
    own = admit(redis_client, 5101, day_quota=9, settle="a", unused=0)
    assert own[0] == 2
    assert len(own) == 13
    # And with no lease in the hash, none either.
    assert len(admit(redis_client, 5101, day_quota=9)) == 13


def test_a_request_refused_early_for_a_lease_held_elsewhere_is_admitted_after_the_wait(gw_redis):
    sub = grant(5102, contract.Limits(quota_per_day=40))

    async def run() -> tuple[int, int, int, list[float]]:
        async with Workers(gw_redis.url) as (a, b):
            by_a = await hold_a_lease(a, sub)
            held = a.leases[sub.subscription_id].left
            # B now takes everything: the quota's rest, including what A holds and will not use.
            results = [await request(b, sub) for _ in range(40)]
            waited = [seconds for ok, seconds in results if ok and seconds > LEASE_MS / 1000 / 2]
            return by_a, held, sum(ok for ok, _ in results), waited

    by_a, held, by_b, waited = asyncio.run(run())
    assert held > 0
    # Exactly the quota, between them: A's unused admissions came back to B, none twice.
    assert by_a + by_b == 40, (by_a, held, by_b)
    # At least one of B's requests (the one that met A's lease) waited for it, within the bound.
    assert waited
    assert max(waited) <= BOUND_S + 0.1, waited


def test_a_quota_truly_used_up_is_still_refused_after_the_bounded_wait(gw_redis):
    sub = grant(5103, contract.Limits(quota_per_day=40))

    async def run() -> tuple[int, int, list[tuple[bool, float]]]:
        async with Workers(gw_redis.url) as (a, b):
            by_a = await hold_a_lease(a, sub)
            by_b = 0
            # B takes what nobody holds; each refusal it meets waits for A's lease (at most the bound).
            for _ in range(40):
                ok, _ = await request(b, sub)
                if not ok:
                    break
                by_b += 1
                if by_a + by_b + a.leases[sub.subscription_id].left == 40:
                    break
            # A spends its lease to the last: the quota is truly used up.
            while (lease := a.leases.get(sub.subscription_id)) is not None and lease.left:
                ok, _ = await request(a, sub)
                by_a += ok
            return by_a, by_b, [await request(b, sub) for _ in range(2)]

    by_a, by_b, last = asyncio.run(run())
    assert by_a + by_b == 40
    assert [ok for ok, _ in last] == [False, False]
    assert max(seconds for _, seconds in last) <= BOUND_S + 0.1, last


def test_a_refusal_with_no_lease_held_elsewhere_is_immediate(gw_redis):
    sub = grant(5104, contract.Limits(quota_per_day=30))

    async def run() -> list[tuple[bool, float]]:
        async with Workers(gw_redis.url) as (a, _):
            # One worker alone, busy enough to take leases of its own.
            return [await request(a, sub) for _ in range(40)]

    results = asyncio.run(run())
    assert sum(ok for ok, _ in results) == 30
    refusals = [seconds for ok, seconds in results if not ok]
    assert len(refusals) == 10
    assert max(refusals) < 0.1, refusals  # no wait: no other holder's lease was outstanding
