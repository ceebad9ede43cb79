"""Admission leases are taken only where this worker's pace for the subscription says they
will be used: at least 2 more requests expected within the lease's lifetime, and sized
from that expectation. A subscription a few times a second (the many-keys shape) takes
none and makes the leases-off call; a busy one does, in blocks its pace can spend."""

from __future__ import annotations

import asyncio
import time

from gateway import contract
from gateway.policies.rate_limit.policy import RateLimitPolicy
from gateway.policies.rate_limit.schema import RateLimitSettings
from gateway.redis_mux import MuxRedis
from gateway.state import RedisHealth
from gateway.types import RequestContext

LIMITS = contract.Limits(rate_per_minute=100_000, quota_per_day=1_000_000)


async def paced(policy: RateLimitPolicy, subscription_id: int, n: int, gap_s: float) -> list[int]:
    """n requests, gap_s apart; after each, the admissions this worker holds in a lease."""
    grant = contract.SubscriptionGrant(subscription_id=subscription_id, api_id=1, plan_id=1, plan_slug="p",
                                       status="active", limits=LIMITS)
    held = []
    for _ in range(n):
        ctx = RequestContext(request=None, request_id="r", event_id="e")  # type: ignore[arg-type]
        ctx.grant, ctx.limits = grant, LIMITS
        await policy.access(ctx)
        lease = policy.leases.get(subscription_id)
        held.append(lease.size if lease is not None else 0)
        await asyncio.sleep(gap_s)
    return held


def test_a_quiet_subscription_takes_no_lease_and_a_busy_one_a_lease_its_pace_can_spend(gw_redis):
    async def run() -> tuple[list[int], list[int], list[int]]:
        handle = MuxRedis(gw_redis.url, timeout=5.0)
        policy = RateLimitPolicy(handle, RedisHealth(), RateLimitSettings(lease_ms=250))
        await policy.start()
        try:
            # About 6 a second: 1.5 expected within 250 ms (the old rule, "asked again within
            # the lease's lifetime", leased here every time).
            quiet = await paced(policy, 5201, 16, 0.16)
            # About 40 a second: 10 expected within 250 ms.
            busy = await paced(policy, 5202, 40, 0.025)
            # Back to back: as large as allowed.
            flat_out = await paced(policy, 5203, 300, 0)
        finally:
            await policy.stop()
            await handle.close()
        return quiet, busy, flat_out

    started = time.monotonic()
    quiet, busy, flat_out = asyncio.run(run())
    assert time.monotonic() - started < 10
    assert quiet == [0] * 16
    assert max(busy) > 0
    assert max(busy) <= 20, busy  # sized from the pace (about 10), not LEASE_MAX
    assert max(flat_out) == 64  # LEASE_MAX
