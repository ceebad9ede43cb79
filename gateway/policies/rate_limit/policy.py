"""Rate limits (per second, per minute) and quotas (per UTC day, per month).

Both are enforced together because they must be checked and counted together:
a request turned away by the rate limit must not eat quota, and one turned away
by the quota must not take a rate-limit slot. limiter.lua does all of it in one
Redis call on Redis server time. The rate limits are sliding-window logs, so
there is no fixed-window double burst: at most N requests in any window.
"""

from __future__ import annotations

import collections
import math
import time
from pathlib import Path

from redis.exceptions import RedisError

from gateway import contract, metrics
from gateway.exceptions import Reject
from gateway.fleet import Fleet
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.rate_limit.schema import RateLimitSettings
from gateway.redis_mux import RedisHandle, encode_command
from gateway.state import RedisHealth
from gateway.types import LimitState, RequestContext

LUA = (Path(__file__).parent / "limiter.lua").read_text()
MONTH_WINDOW_S = 30 * 86400  # nominal, for RateLimit-Policy; the counter itself follows the calendar
# Resolved once: a labels() lookup per request is measurable at this rate.
DECIDED_ALLOWED = metrics.LIMITER_DECISIONS.labels("allowed")
DECIDED_RATE = metrics.LIMITER_DECISIONS.labels("rate_limited")
DECIDED_QUOTA = metrics.LIMITER_DECISIONS.labels("quota_exceeded")


def counter_keys(subscription_id: int) -> list[str]:
    base = contract.limiter_key_base(subscription_id)
    return [f"{base}:s", f"{base}:m", f"{base}:q"]


class LocalLimiter:
    """fail_open fallback: an in-process sliding-window log per subscription and window."""

    def __init__(self, share: int) -> None:
        self.share = share
        self.logs: dict[tuple[int, int], collections.deque[float]] = {}

    def admit(self, subscription_id: int, limits: contract.Limits) -> tuple[bool, int]:
        now = time.monotonic()
        checks: list[tuple[collections.deque[float], int, float]] = []
        for window, rate in ((1, limits.rate_per_second), (60, limits.rate_per_minute)):
            if not rate:
                continue
            allowed = max(1, rate // self.share)
            log = self.logs.setdefault((subscription_id, window), collections.deque())
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) >= allowed:
                return False, max(1, math.ceil(log[0] + window - now))
            checks.append((log, allowed, window))
        for log, _, _ in checks:
            log.append(now)
        if len(self.logs) > 100_000:  # bounded: forget the idle ones
            self.logs = {k: v for k, v in self.logs.items() if v and v[-1] > now - 60}
        return True, 0


class RateLimitPolicy(Policy):
    NAME = "rate_limit"
    PRIORITY = 900

    def __init__(
        self, redis: RedisHandle, health: RedisHealth, settings: RateLimitSettings, fleet: Fleet | None = None
    ) -> None:
        self.redis = redis
        self.health = health
        self.settings = settings
        self.fleet = fleet
        self.local = LocalLimiter(settings.local_share or 1)
        self._encoded: dict[tuple[int, contract.Limits], tuple[bytes, bytes]] = {}

    @classmethod
    def create(cls, settings: RateLimitSettings, deps: PolicyDeps) -> RateLimitPolicy:
        return cls(deps.redis, deps.health, settings, deps.fleet)

    def _command(self, subscription_id: int, limits: contract.Limits, member: str) -> bytes:
        """The EVALSHA, RESP-encoded. Everything but the member is the same for every
        request of a subscription, so it is encoded once and kept (bounded)."""
        cached = self._encoded.get((subscription_id, limits))
        if cached is None:
            keys = counter_keys(subscription_id)
            sha = self.redis.script_sha(LUA)
            args = [
                limits.rate_per_second or 0,
                limits.rate_per_minute or 0,
                limits.quota_per_day or 0,
                limits.quota_per_month or 0,
            ]
            head = encode_command(("EVALSHA", sha, len(keys), *keys, "", *args))
            # Split around the empty member placeholder: "$0\r\n\r\n".
            marker = head.index(b"$0\r\n\r\n")
            cached = (head[:marker], head[marker + 6 :])
            if len(self._encoded) > 100_000:
                self._encoded.clear()
            self._encoded[(subscription_id, limits)] = cached
        data = member.encode()
        return b"%s$%d\r\n%s\r\n%s" % (cached[0], len(data), data, cached[1])

    async def access(self, ctx: RequestContext) -> None:
        grant, limits = ctx.grant, ctx.limits
        if grant is None or limits is None:
            return
        if not (limits.rate_per_second or limits.rate_per_minute or limits.quota_per_day or limits.quota_per_month):
            # Unlimited: no limiter call, but fail_closed still means "nothing while Redis is
            # away", known from the last Redis call anyone in this worker made.
            if self.health.outage and (ctx.route is None or ctx.route.redis_failure_mode != "fail_open"):
                self._redis_down(ctx, grant, limits)
            return
        if not self.health.available():
            self._redis_down(ctx, grant, limits)
            return
        try:
            result = await self.redis.evalsha_encoded(LUA, self._command(grant.subscription_id, limits, ctx.event_id))
        except (RedisError, OSError) as exc:
            self.health.failed(exc)
            self._redis_down(ctx, grant, limits)
            return
        denied, retry_ms, used_s, reset_s, used_m, reset_m, used_d, reset_d, used_mo, reset_mo = (
            int(v) for v in result
        )
        state = LimitState()
        for name, quota, window, used, reset in (
            ("second", limits.rate_per_second, 1, used_s, math.ceil(reset_s / 1000)),
            ("minute", limits.rate_per_minute, 60, used_m, math.ceil(reset_m / 1000)),
            ("day", limits.quota_per_day, 86400, used_d, reset_d),
            ("month", limits.quota_per_month, MONTH_WINDOW_S, used_mo, reset_mo),
        ):
            if quota:
                state.policies.append((name, quota, window, max(0, quota - used), max(0, reset)))
        ctx.limit_state = state
        if denied == 0:
            DECIDED_ALLOWED.inc()
            return
        retry_after = max(1, math.ceil(retry_ms / 1000))
        state.retry_after_s = retry_after
        if denied == 2:
            state.denied = "quota"
            DECIDED_QUOTA.inc()
            raise Reject(
                429,
                "quota-exceeded",
                "Quota exhausted",
                decision="quota_exceeded",
                detail="The plan's quota for this period is used up; it resets at the time given in Retry-After.",
                headers={"Retry-After": str(retry_after)},
            )
        state.denied = "rate"
        DECIDED_RATE.inc()
        raise Reject(
            429,
            "rate-limited",
            "Rate limit exceeded",
            decision="rate_limited",
            headers={"Retry-After": str(retry_after)},
        )

    def _redis_down(self, ctx: RequestContext, grant: contract.SubscriptionGrant, limits: contract.Limits) -> None:
        route = ctx.route
        if route is None or route.redis_failure_mode != "fail_open":
            metrics.LIMITER_DECISIONS.labels("redis_unavailable").inc()
            raise Reject(
                503,
                "limiter-unavailable",
                "Rate limiting is unavailable",
                decision="redis_unavailable",
                detail="This API fails closed while its rate limiter cannot be reached.",
                headers={"Retry-After": str(self.settings.retry_after_redis_down_s)},
            )
        # This worker's share: the plan's rate over every worker of the live fleet (last
        # known), so N nodes together stay at the plan's rate.
        self.local.share = self.settings.local_share or (self.fleet.total_workers if self.fleet else 1)
        admitted, retry_after = self.local.admit(grant.subscription_id, limits)
        ctx.limit_state = LimitState(local=True)
        if admitted:
            metrics.LIMITER_DECISIONS.labels("local_allowed").inc()
            return
        metrics.LIMITER_DECISIONS.labels("local_rate_limited").inc()
        raise Reject(
            429,
            "rate-limited",
            "Rate limit exceeded",
            decision="rate_limited",
            headers={"Retry-After": str(retry_after)},
        )

    def response(self, ctx: RequestContext) -> None:
        state = ctx.limit_state
        if state is None or not state.policies:
            return
        headers = ctx.response_headers
        if self.settings.ietf_headers:
            headers.append(
                ("RateLimit-Policy", ", ".join(f'"{n}";q={q};w={w}' for n, q, w, _, _ in state.policies))
            )
            headers.append(("RateLimit", ", ".join(f'"{n}";r={r};t={t}' for n, _, _, r, t in state.policies)))
        if self.settings.legacy_headers:
            # The most restrictive dimension: fewest remaining, then the latest reset.
            _, quota, _, remaining, reset = min(state.policies, key=lambda p: (p[3], -p[4]))
            headers.append(("X-RateLimit-Limit", str(quota)))
            headers.append(("X-RateLimit-Remaining", str(remaining)))
            headers.append(("X-RateLimit-Reset", str(reset)))
