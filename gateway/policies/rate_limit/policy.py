"""Rate limits (per second, per minute) and quotas (per UTC day, per month).

Both are enforced together because they must be checked and counted together:
a request turned away by the rate limit must not eat quota, and one turned away
by the quota must not take a rate-limit slot. limiter.lua does all of it in one
Redis call on Redis server time. The rate limits are GCRA token buckets (as in
redis-cell): O(1) memory and time whatever the limit, with the plan's burst as
the per-second bucket's depth. The quotas are exact counters.

Admission leases (GATEWAY_RATE_LIMIT_LEASE_MS > 0): the call that admits a request
may also take a small block of further admissions, out of the same buckets and
counters, which this worker then spends without asking Redis. Held admissions
stay in the bucket's books until they are settled (limiter.lua), so admission
stays exact across the fleet; see docs/gateway.md for the bound on headroom.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import RedisError

from gateway import contract, metrics, tasks
from gateway.exceptions import Reject
from gateway.fleet import Fleet
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.rate_limit.schema import RateLimitSettings
from gateway.redis_mux import RedisHandle, encode_command
from gateway.state import RedisHealth
from gateway.types import LimitState, RequestContext

log = logging.getLogger("gateway.rate_limit")

LUA = (Path(__file__).parent / "limiter.lua").read_text()
MONTH_WINDOW_S = 30 * 86400  # nominal, for RateLimit-Policy; the counter itself follows the calendar
# A lease takes at most this fraction (1/n) of what any dimension has left: leases
# shrink as a subscription nears its limit and stop when fewer than n + 1 are left.
LEASE_DIVISOR = 4
# A lease is taken only when this worker expects at least this many more requests of the
# subscription within the lease's lifetime (from its smoothed inter-arrival gap): a lease
# that would expire unspent costs a longer call, a record in Redis and a settlement.
LEASE_MIN_EXPECTED = 2.0
# Weight of the newest gap in the smoothed one: low enough that a quiet subscription's
# chance clusters (3.5 requests a second seen 100 ms apart) rarely start a lease.
PACE_WEIGHT = 0.25
# A subscription this worker has not seen yet starts as if its requests came this many
# lease lifetimes apart: no lease until its pace says otherwise.
PACE_START_LIFETIMES = 2.0
# Added to the wait before asking again after a refusal while other holders' leases are
# live (they end in Redis at most 2 x LEASE_MS after they were taken): the ask then
# comes after they ended there.
LEASE_WAIT_SLACK_S = 0.01
# Redis keeps a lease's record 30 s past its end (limiter.lua's GRACE_US) so that its unused
# quota can still be given back; a worker retries a failed settlement for a little less.
SETTLE_RETRY_S = 25.0
# Resolved once: a labels() lookup per request is measurable at this rate.
DECIDED_ALLOWED = metrics.LIMITER_DECISIONS.labels("allowed")
DECIDED_LEASED = metrics.LIMITER_DECISIONS.labels("allowed_from_lease")
DECIDED_RATE = metrics.LIMITER_DECISIONS.labels("rate_limited")
DECIDED_QUOTA = metrics.LIMITER_DECISIONS.labels("quota_exceeded")
# Not a decision: a refusal while other workers held leases, asked again after they ended.
DECIDED_REASKED = metrics.LIMITER_LEASE_WAITS


def calendar(epoch_s: float) -> tuple[str, str]:
    """The UTC day (days since the epoch) and month (yyyymm) of a time, as limiter.lua spells them."""
    day = int(epoch_s) // 86400
    date = datetime.fromtimestamp(day * 86400, tz=UTC)
    return str(day), f"{date.year:04d}{date.month:02d}"


def month_end(day: int) -> int:
    """The first day of the month after the one holding ``day`` (days since the epoch):
    limiter.lua's ARGV[16], with which it skips its own calendar arithmetic."""
    date = datetime.fromtimestamp(day * 86400, tz=UTC)
    following = datetime(date.year + (date.month == 12), date.month % 12 + 1, 1, tzinfo=UTC)
    return int(following.timestamp()) // 86400


def policy_header(policies: list[tuple[str, int, int, int, int]]) -> str:
    """The RateLimit-Policy value: each enforced dimension's name, quota and window."""
    return ", ".join([f'"{n}";q={q};w={w}' for n, q, w, _, _ in policies])


@dataclass(slots=True, frozen=True)
class Prepared:
    """What a subscription's calls reuse while its limits and the day stay the same: the
    limiter's keys, a single admission's encoded EVALSHA and the reply's limits-only part."""

    limits: contract.Limits
    day: str
    keys: list[str]
    single: bytes
    lease_head: bytes  # a lease call's EVALSHA up to the quotas; _lease_command adds the rest
    shape: tuple[str, int, int, int, int]  # limit_shape


def limit_shape(limits: contract.Limits) -> tuple[str, int, int, int, int]:
    """What of a reply's headers depends on the limits alone: the RateLimit-Policy value and
    each dimension's quota (0 when not enforced), per second, minute, day and month."""
    per_s, per_m = limits.rate_per_second or 0, limits.rate_per_minute or 0
    per_d, per_mo = limits.quota_per_day or 0, limits.quota_per_month or 0
    dimensions = [
        (name, quota, window, 0, 0)
        for name, quota, window in (("second", per_s, 1), ("minute", per_m, 60), ("day", per_d, 86400),
                                    ("month", per_mo, MONTH_WINDOW_S))
        if quota
    ]
    return policy_header(dimensions), per_s, per_m, per_d, per_mo


def limiter_keys(subscription_id: int, day: str, month: str) -> list[str]:
    """Every key limiter.lua touches for one subscription (cluster rule: all in KEYS, one hash tag)."""
    base = contract.limiter_key_base(subscription_id)
    return [f"{base}:b", contract.quota_day_counter_key(subscription_id, int(day)), f"{base}:q:m:{month}"]


def bucket_args(limits: contract.Limits) -> list[int]:
    """Rate and depth of the per-second and per-minute buckets. The per-second bucket holds
    max(rate, burst): burst 20 on 10/s admits 20 at once, then 10 a second; a burst at or
    below the rate (0 by default) leaves a second's allowance. The per-minute bucket holds
    a minute's allowance."""
    per_s, per_m = limits.rate_per_second or 0, limits.rate_per_minute or 0
    return [per_s, max(per_s, limits.burst) if per_s else 0, per_m, per_m]


@dataclass(slots=True)
class Reply:
    denied: int
    retry_ms: int
    granted: int
    state: LimitState
    # A refusal while other holders' leases were live: until the last of them ends in Redis.
    wait_ms: int = 0


@dataclass(slots=True)
class Pace:
    """How fast one subscription's requests reach this worker: when it last went to Redis
    for them, the smoothed gap between two requests, the requests a lease admitted that
    the sweeper settled (they count as arrivals at the next call), and until when not to
    ask for a lease (the script gave none: the subscription is at or near a limit)."""

    last: float
    gap: float
    spent: int = 0
    no_lease_until: float = 0.0


@dataclass(slots=True)
class Lease:
    """Admissions this worker holds for one subscription, under one set of limits."""

    id: str
    limits: contract.Limits
    size: int  # admissions held in Redis's books under this lease
    left: int  # of those, not yet spent
    deadline: float  # monotonic; the lease is not used after it
    day: str
    month: str
    base: LimitState  # the headers at grant time, without the lease's own admissions
    granted_at: float


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
        self.lease_s = settings.lease_ms / 1000
        self.leases: dict[int, Lease] = {}
        # Per subscription: its requests' pace here, which decides whether to take a lease and how large.
        self.pace: dict[int, Pace] = {}
        # One lease request in flight per subscription; concurrent requests wait for it.
        self.inflight: dict[int, asyncio.Future[Reply | None]] = {}
        self._lease_prefix = f"{os.getpid():x}.{secrets.token_hex(4)}."
        self._lease_seq = 0
        self._sweeper: asyncio.Task[None] | None = None
        self.unsettled: list[tuple[int, Lease]] = []  # settlements that failed, retried by the sweeper
        self._calendar: tuple[int, str, str, int] = (-1, "", "", 0)  # day, its name, yyyymm, month_end(day)
        self._prepared: dict[int, Prepared] = {}  # per subscription, for its current limits and day

    @classmethod
    def create(cls, settings: RateLimitSettings, deps: PolicyDeps) -> RateLimitPolicy:
        return cls(deps.redis, deps.health, settings, deps.fleet)

    async def start(self) -> None:
        if self.lease_s:
            # Supervised (gateway/tasks.py): a sweeper that died would leave leases unsettled.
            self._sweeper = tasks.spawn("rate-limit-leases", self._sweep)

    async def stop(self) -> None:
        await tasks.stop(self._sweeper, "rate-limit-leases")
        # Give back what we hold: otherwise it stays held until it expires in Redis (<= 1 s).
        leases, self.leases = [*self.leases.items(), *self.unsettled], {}
        self.unsettled = []
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(self._return(s, lease) for s, lease in leases)), 1.0)

    # --- Redis --------------------------------------------------------------------------

    def _today(self) -> tuple[str, str]:
        now = time.time()
        day = int(now) // 86400
        if self._calendar[0] != day:
            self._calendar = (day, *calendar(now), month_end(day))
        return self._calendar[1], self._calendar[2]

    def _args(
        self, limits: contract.Limits, want: int, lease_id: str, settle: Lease | None, day: str, month: str
    ) -> list[int | str]:
        return [
            "a",
            day,
            month,
            *bucket_args(limits),
            limits.quota_per_day or 0,
            limits.quota_per_month or 0,
            want,
            lease_id,
            int(self.lease_s * 2_000_000),  # Redis ends a lease at twice the time this worker uses it
            LEASE_DIVISOR,
            settle.id if settle is not None else "",
            settle.left if settle is not None else 0,
            self._calendar[3],  # where this month ends: the script checks it against Redis time
        ]

    def _prepare(self, subscription_id: int, limits: contract.Limits, day: str, month: str) -> Prepared:
        keys = limiter_keys(subscription_id, day, month)
        # The script ignores the lease id when no lease is asked, so a single admission's
        # EVALSHA is the same for a subscription, its limits and the day.
        args = self._args(limits, 1, "", None, day, month)
        command = ("EVALSHA", self.redis.script_sha(LUA), len(keys), *keys, *args)
        single = encode_command(command)
        # A lease call differs from it in its last seven arguments (ARGV[10..16]).
        head = command[:-7]
        lease_head = b"*%d\r\n" % len(command) + encode_command(head).partition(b"\r\n")[2]
        return Prepared(limits, day, keys, single, lease_head, limit_shape(limits))

    def _lease_command(self, prepared: Prepared, want: int, lease_id: str, settle: Lease | None) -> bytes:
        tail = (
            want,
            lease_id,
            int(self.lease_s * 2_000_000),
            LEASE_DIVISOR,
            settle.id if settle is not None else "",
            settle.left if settle is not None else 0,
            self._calendar[3],
        )
        return prepared.lease_head + encode_command(tail).partition(b"\r\n")[2]

    async def _call(
        self, subscription_id: int, limits: contract.Limits, want: int, lease_id: str, settle: Lease | None
    ) -> Reply:
        day, month = self._today()
        prepared = self._prepared.get(subscription_id)
        if prepared is None or prepared.day != day or (prepared.limits is not limits and prepared.limits != limits):
            if len(self._prepared) > 100_000:
                self._prepared.clear()
            prepared = self._prepared[subscription_id] = self._prepare(subscription_id, limits, day, month)
        if want == 1 and settle is None:
            # One admission, nothing to settle (every call with leases off): the command made once.
            result = await self.redis.evalsha_encoded(LUA, prepared.single)
        else:
            result = await self.redis.evalsha_encoded(LUA, self._lease_command(prepared, want, lease_id, settle))
        if int(result[0]) == -1:
            # Our clock and Redis's disagree about the date (we are at midnight): Redis's wins.
            day, month = result[1].decode(), result[2].decode()
            self._calendar = (int(day), day, month, month_end(int(day)))
            args = self._args(limits, want, lease_id, settle, day, month)
            result = await self.redis.evalsha(LUA, limiter_keys(subscription_id, day, month), args)
        denied, retry_ms, granted, left_s, full_s, left_m, full_m, used_d, reset_d, used_mo, reset_mo = map(
            int, result[:11]
        )
        header, per_s, per_m, per_d, per_mo = prepared.shape
        # Each enforced dimension: (name, quota, window, remaining, seconds to reset). Never
        # more than a window's allowance is advertised, even with burst credit in the bucket.
        policies: list[tuple[str, int, int, int, int]] = []
        if per_s:
            policies.append(("second", per_s, 1, max(0, min(per_s, left_s)), max(0, math.ceil(full_s / 1000))))
        if per_m:
            policies.append(("minute", per_m, 60, max(0, min(per_m, left_m)), max(0, math.ceil(full_m / 1000))))
        if per_d:
            policies.append(("day", per_d, 86400, max(0, min(per_d, per_d - used_d)), max(0, reset_d)))
        if per_mo:
            policies.append(("month", per_mo, MONTH_WINDOW_S, max(0, min(per_mo, per_mo - used_mo)), max(0, reset_mo)))
        # Python always passes ARGV[16], so the reply is 11 long, 12 with a lease wait.
        wait_ms = int(result[11]) if denied and len(result) > 11 else 0
        return Reply(denied, retry_ms, granted, LimitState(policies=policies, policy_header=header), wait_ms)

    async def _return(self, subscription_id: int, lease: Lease) -> None:
        args: list[int | str] = ["r", lease.day, lease.month, *bucket_args(lease.limits), lease.id, lease.left]
        await self.redis.evalsha(LUA, limiter_keys(subscription_id, lease.day, lease.month), args)

    async def _sweep(self) -> None:
        """Settle leases that ran out of time unspent, so their admissions go back to the bucket."""
        while True:
            tasks.beat("rate-limit-leases")
            await asyncio.sleep(self.lease_s / 2)
            now = time.monotonic()
            ended = [(s, lease) for s, lease in self.leases.items() if lease.deadline <= now]
            for subscription_id, lease in ended:
                del self.leases[subscription_id]
                pace = self.pace.get(subscription_id)
                if pace is not None:
                    pace.spent += lease.size - lease.left
            # Retry what could not be settled (Redis was away), while Redis still keeps the record.
            ended += [(s, lease) for s, lease in self.unsettled if now - lease.granted_at < SETTLE_RETRY_S]
            self.unsettled = []
            if ended and not self.health.available():
                self.unsettled = ended
            elif ended:
                results = await asyncio.gather(*(self._return(s, lease) for s, lease in ended), return_exceptions=True)
                for item, result in zip(ended, results, strict=True):
                    if isinstance(result, (RedisError, OSError)):
                        self.health.failed(result)
                        self.unsettled.append(item)
                    elif isinstance(result, BaseException):
                        log.error("settling a lease failed: %r", result)
            if len(self.pace) > 100_000:
                self.pace = {s: p for s, p in self.pace.items() if p.last > now - 60}

    # --- admission ----------------------------------------------------------------------

    def _from_lease(self, ctx: RequestContext, subscription_id: int, limits: contract.Limits) -> bool:
        lease = self.leases.get(subscription_id)
        if (
            lease is None
            or lease.left <= 0
            or (lease.limits is not limits and lease.limits != limits)
            or time.monotonic() >= lease.deadline
        ):
            return False
        lease.left -= 1
        # What the grant reported, plus what this worker still holds: a sensible (never
        # optimistic beyond our own lease) view of what is left.
        left, base = lease.left, lease.base
        ctx.limit_state = LimitState(
            policies=[(n, q, w, min(q, r + left), t) for n, q, w, r, t in base.policies],
            policy_header=base.policy_header,
        )
        DECIDED_LEASED.inc()
        return True

    def _pace(self, subscription_id: int) -> tuple[float, int, Lease | None]:
        """This request's step of the subscription's pace here: (now, the lease to ask for
        beyond this request, 0 for none, the lease in hand to settle with the call)."""
        now = time.monotonic()
        prev = self.leases.pop(subscription_id, None)
        pace = self.pace.get(subscription_id)
        extra = 0
        if pace is None:
            self.pace[subscription_id] = Pace(now, PACE_START_LIFETIMES * self.lease_s)
        else:
            # The requests since the last call (this one, what a lease admitted meanwhile)
            # over the time since: one gap sample, smoothed.
            arrivals = 1 + pace.spent + (prev.size - prev.left if prev is not None else 0)
            pace.gap += PACE_WEIGHT * ((now - pace.last) / arrivals - pace.gap)
            pace.last, pace.spent = now, 0
            # Requests expected within the lease's lifetime: a lease of that many, or none
            # when it would likely expire unspent (the script's quarter rule still caps it).
            expected = self.lease_s / pace.gap if pace.gap > 0 else math.inf
            if expected >= LEASE_MIN_EXPECTED and now >= pace.no_lease_until:
                extra = min(self.settings.lease_max, math.ceil(expected))
        if prev is not None and prev.day != self._today()[0]:
            self.unsettled.append((subscription_id, prev))  # taken before midnight: settled on its own day
            prev = None
        return now, extra, prev

    async def _take(
        self, subscription_id: int, limits: contract.Limits, now: float, extra: int, settle: Lease | None
    ) -> Reply:
        """Ask Redis for this request's admission and a lease of up to ``extra`` more,
        settling the lease in hand in the same call."""
        lease_id = ""
        if extra:
            self._lease_seq += 1
            lease_id = f"{self._lease_prefix}{self._lease_seq}"
        try:
            reply = await self._call(subscription_id, limits, extra + 1, lease_id, settle)
        except (RedisError, OSError):
            if settle is not None:
                self.unsettled.append((subscription_id, settle))
            raise
        if extra and reply.granted <= 1 and (pace := self.pace.get(subscription_id)) is not None:
            # No lease given: a refusal, or too little left for one (the quarter rule). Asking
            # again at every request would make each a lease call that this subscription's
            # other requests here queue behind, one round trip after another, just when it is
            # busiest; for a lease's lifetime, go by single admissions, concurrent as with
            # leases off.
            pace.no_lease_until = now + self.lease_s
        if reply.granted > 1:
            day, month = self._today()
            # The deadline counts from before the call: Redis's own clock for the lease
            # started later, and it runs twice as long, so we always stop first.
            lease = Lease(
                lease_id, limits, reply.granted - 1, reply.granted - 1, now + self.lease_s, day, month,
                reply.state, now,
            )
            self.leases[subscription_id] = lease
            # This request's headers count the lease as available, as the lease's own requests will.
            reply.state = LimitState(
                policies=[(n, q, w, min(q, r + lease.left), t) for n, q, w, r, t in reply.state.policies],
                policy_header=reply.state.policy_header,
            )
        return reply

    async def _decide(self, ctx: RequestContext, subscription_id: int, limits: contract.Limits) -> Reply | None:
        """Redis's answer for this request, or None when a lease admitted it."""
        if not self.lease_s:
            return await self._call(subscription_id, limits, 1, "", None)
        if subscription_id in self.leases and self._from_lease(ctx, subscription_id, limits):
            return None
        if subscription_id in self.inflight:
            reply = await self._fetch(ctx, subscription_id, limits)
        else:
            now, extra, settle = self._pace(subscription_id)
            if extra or settle is not None:
                reply = await self._ask(subscription_id, limits, now, extra, settle)
            else:
                # A quiet subscription (most, with many keys): the single admission, as with leases off.
                reply = await self._call(subscription_id, limits, 1, "", None)
        if reply is None or not reply.wait_ms or reply.wait_ms >= reply.retry_ms:
            return reply
        # Refused while other holders' leases were live: what they do not use comes back
        # when they settle (their sweeper, LEASE_MS / 2 after they stop using it), at the
        # latest when Redis ends them. Ask once more then, for this request alone, and go by
        # that answer: refusing early would turn away what the limit still allows. (Not when
        # the refusal's own wait is the shorter: the bucket refills by itself before the
        # leases end, as for a subscription over a fast rate, and waiting would only hold
        # back its 429s.)
        await asyncio.sleep(min(reply.wait_ms / 1000, 2 * self.lease_s) + LEASE_WAIT_SLACK_S)
        if self._from_lease(ctx, subscription_id, limits):
            return None
        DECIDED_REASKED.inc()
        return await self._call(subscription_id, limits, 1, "", None)

    async def _fetch(self, ctx: RequestContext, subscription_id: int, limits: contract.Limits) -> Reply | None:
        """This request's answer while a lease call for the subscription is in flight: from
        that lease, or that call's refusal, or a call of its own once none is in flight."""
        while (pending := self.inflight.get(subscription_id)) is not None:
            # Another request of this subscription is asking for a lease: wait for it, then
            # take from it, or share its refusal (the bucket was empty a moment ago; a
            # refusal made while others held leases is asked again by each sharer, in
            # _decide), or else go round: the next waiter to find no call in flight makes
            # one. (Each going to Redis alone would never start a lease in a burst that
            # arrives all at once.)
            shared = await asyncio.shield(pending)
            if self._from_lease(ctx, subscription_id, limits):
                return None
            if shared is not None and shared.denied:
                return shared
        now, extra, settle = self._pace(subscription_id)
        return await self._ask(subscription_id, limits, now, extra, settle)

    async def _ask(
        self, subscription_id: int, limits: contract.Limits, now: float, extra: int, settle: Lease | None
    ) -> Reply:
        if not extra:
            # No lease to ask for: nothing for other requests to wait for. (When they come
            # close together, their own steps of the pace soon ask for one.)
            return await self._take(subscription_id, limits, now, 0, settle)
        future: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()
        self.inflight[subscription_id] = future
        reply = None
        try:
            reply = await self._take(subscription_id, limits, now, extra, settle)
            return reply
        finally:
            del self.inflight[subscription_id]
            future.set_result(reply)

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
            reply = await self._decide(ctx, grant.subscription_id, limits)
        except (RedisError, OSError) as exc:
            self.health.failed(exc)
            self._redis_down(ctx, grant, limits)
            return
        if reply is None:
            return
        state = ctx.limit_state = reply.state
        if reply.denied == 0:
            DECIDED_ALLOWED.inc()
            return
        retry_after = max(1, math.ceil(reply.retry_ms / 1000))
        state = ctx.limit_state = LimitState(
            policies=state.policies, retry_after_s=retry_after, policy_header=state.policy_header
        )
        if reply.denied == 2:
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
        policies = state.policies
        if self.settings.ietf_headers:
            headers.append(("RateLimit-Policy", state.policy_header or policy_header(policies)))
            headers.append(("RateLimit", ", ".join([f'"{n}";r={r};t={t}' for n, _, _, r, t in policies])))
        if self.settings.legacy_headers:
            # The most restrictive dimension: fewest remaining, then the latest reset (the
            # first such, as min() would pick; a loop, as this runs on every response).
            _, quota, _, remaining, reset = policies[0]
            for policy in policies:
                if policy[3] < remaining or (policy[3] == remaining and policy[4] > reset):
                    _, quota, _, remaining, reset = policy
            headers.append(("X-RateLimit-Limit", str(quota)))
            headers.append(("X-RateLimit-Remaining", str(remaining)))
            headers.append(("X-RateLimit-Reset", str(reset)))
