"""Upstream health per version: active checks, passive ejection, and what the fleet sees of both.

A version's ``policies.upstream_health`` (gateway/route_policies.py) gives each of its
targets a ``TargetHealth``, keyed by (api, version, target URL), that the proxy's
balancer asks before it puts the target in the rotation:

* Active: one supervised task per worker (``tasks.spawn("upstream_health")``) sends
  ``GET <target base URL><path>`` every ``interval_s`` to every target of every version
  that asks for it. A 2xx or 3xx answer within ``timeout_s`` passes. After
  ``unhealthy_threshold`` consecutive failures the target leaves the rotation; after
  ``healthy_threshold`` consecutive passes it comes back. A target starts healthy (a
  restarted worker does not refuse traffic until its first round of checks).
* Passive: ``failures`` consecutive connect errors, timeouts or 5xx answers of real
  traffic eject the target for ``eject_s``; then it is back in the rotation (and the
  active checks, if any, still have their say).

Each worker checks on its own (they hold the same routes, so they agree within an
interval); with W workers an upstream sees W checks per interval per version.

Visibility: the gauge ``tollway_gateway_upstream_healthy{api,version,target}`` (1 in the
rotation, 0 out), and every ``PUBLISH_EVERY_S`` the worker writes its view into the
node's hash ``contract.health_key(node)`` (field ``api/version target``, value JSON
``{"healthy", "reason", "at"}``) with an expiry of GATEWAY_NODE_TTL_S, which the
operators' dashboard reads. A node that stops publishing disappears from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from redis.exceptions import RedisError
from yarl import URL

from gateway import contract, metrics, tasks
from gateway.config import GatewayConfig
from gateway.redis_mux import Arg, RedisHandle
from gateway.route_policies import ActiveHealthCheck, PassiveEjection

log = logging.getLogger("gateway.upstream_health")

TASK_NAME = "upstream_health"
PUBLISH_EVERY_S = 2.0
IDLE_SLEEP_S = 1.0  # with no version asking for checks, look again for new routes this often
HealthKey = tuple[str, str, str]  # api slug, version, target URL


class TargetHealth:
    __slots__ = (
        "active", "api", "check_failures", "check_passes", "due", "ejected_until", "healthy", "passive",
        "passive_failures", "reason", "url", "version",
    )

    def __init__(self, key: HealthKey, active: ActiveHealthCheck | None, passive: PassiveEjection | None) -> None:
        self.api, self.version, self.url = key
        self.active = active
        self.passive = passive
        self.healthy = True  # the active checks' verdict
        self.check_passes = 0
        self.check_failures = 0
        self.due = 0.0  # monotonic time of the next active check
        self.passive_failures = 0
        self.ejected_until = 0.0
        self.reason = ""
        self._gauge(True)

    def available(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until

    def _gauge(self, up: bool) -> None:
        metrics.UPSTREAM_HEALTHY.labels(self.api, self.version, self.url).set(1 if up else 0)

    # --- active ---------------------------------------------------------------------------

    def check_passed(self) -> None:
        assert self.active is not None
        self.check_failures = 0
        self.check_passes += 1
        if not self.healthy and self.check_passes >= self.active.healthy_threshold:
            self.healthy = True
            self.reason = ""
            log.warning("upstream %s of %s/%s is healthy again", self.url, self.api, self.version)
            self._gauge(self.available(time.monotonic()))

    def check_failed(self, reason: str) -> None:
        assert self.active is not None
        self.check_passes = 0
        self.check_failures += 1
        if self.healthy and self.check_failures >= self.active.unhealthy_threshold:
            self.healthy = False
            self.reason = f"health check: {reason}"
            log.warning("upstream %s of %s/%s is unhealthy (%s)", self.url, self.api, self.version, reason)
            self._gauge(False)

    # --- passive --------------------------------------------------------------------------

    def passive_ok(self) -> None:
        self.passive_failures = 0

    def passive_failed(self, now: float, reason: str) -> None:
        passive = self.passive
        if passive is None:
            return
        self.passive_failures += 1
        if self.passive_failures >= passive.failures:
            self.passive_failures = 0
            self.ejected_until = now + passive.eject_s
            self.reason = f"ejected: {reason}"
            metrics.UPSTREAM_EJECTIONS.labels(self.api, self.version).inc()
            log.warning("upstream %s of %s/%s ejected for %.1fs (%s)", self.url, self.api, self.version,
                        passive.eject_s, reason)
            self._gauge(False)

    def refresh_gauge(self, now: float) -> None:
        """An ejection ends by the clock, not by an event: the checker's loop notices it."""
        self._gauge(self.available(now))

    def describe(self, now: float) -> dict[str, object]:
        up = self.available(now)
        return {"healthy": up, "reason": "" if up else self.reason, "at": int(time.time())}


class HealthChecks:
    """Every TargetHealth of this worker, and the supervised loop that checks and publishes them."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.targets: dict[HealthKey, TargetHealth] = {}
        self.routes: Callable[[], Iterable[contract.RouteRecord]] = lambda: ()
        self.redis: RedisHandle | None = None
        self.session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._published = 0.0
        self._fields: set[str] = set()  # published last time
        self.generation = 0  # bumped when a TargetHealth is dropped: balancers holding it are rebuilt

    def target(self, route: contract.RouteRecord, url: str) -> TargetHealth | None:
        health = route.policies.upstream_health
        if health is None or (health.active is None and health.passive is None):
            return None
        key = (route.api_slug, route.version, url)
        found = self.targets.get(key)
        if found is None or found.active != health.active or found.passive != health.passive:
            if found is not None:
                self.generation += 1
            found = self.targets[key] = TargetHealth(key, health.active, health.passive)
        return found

    def start(
        self, routes: Callable[[], Iterable[contract.RouteRecord]], redis: RedisHandle | None,
        session: aiohttp.ClientSession,
    ) -> None:
        self.routes = routes
        self.redis = redis
        self.session = session
        self._task = tasks.spawn(TASK_NAME, self._run)

    async def stop(self) -> None:
        await tasks.stop(self._task, TASK_NAME)
        self._task = None

    def current(self) -> list[TargetHealth]:
        """The TargetHealth of every target of every route now published (creating any that
        is missing), and forget the rest."""
        wanted: dict[HealthKey, TargetHealth] = {}
        for route in self.routes():
            for upstream in route.upstreams:
                found = self.target(route, upstream.url.rstrip("/"))
                if found is not None:
                    wanted[(found.api, found.version, found.url)] = found
        for key in self.targets.keys() - wanted.keys():
            api, version, url = key
            del self.targets[key]
            self.generation += 1
            with contextlib.suppress(KeyError):
                metrics.UPSTREAM_HEALTHY.remove(api, version, url)
        return list(wanted.values())

    async def _run(self) -> None:
        while True:
            tasks.beat(TASK_NAME)
            now = time.monotonic()
            targets = self.current()
            due = [t for t in targets if t.active is not None and now >= t.due]
            if due:
                await asyncio.gather(*(self.check(t) for t in due))
            now = time.monotonic()
            for t in targets:
                t.refresh_gauge(now)
            if now - self._published >= PUBLISH_EVERY_S:
                self._published = now
                await self.publish(targets, now)
            pending = [t.due for t in targets if t.active is not None]
            ejections = [t.ejected_until for t in targets if t.ejected_until > now]
            wake = min([*pending, *ejections, now + IDLE_SLEEP_S, self._published + PUBLISH_EVERY_S])
            await asyncio.sleep(max(0.01, wake - time.monotonic()))

    async def check(self, target: TargetHealth) -> None:
        active = target.active
        assert active is not None
        assert self.session is not None
        target.due = time.monotonic() + active.interval_s
        parsed = URL(target.url)
        url = URL(f"{parsed.scheme}://{parsed.raw_authority}{active.path}", encoded=True)
        try:
            async with self.session.get(
                url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=active.timeout_s)
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            target.check_failed("timeout")
            return
        except (aiohttp.ClientError, OSError) as exc:
            target.check_failed(type(exc).__name__)
            return
        if 200 <= status < 400:
            target.check_passed()
        else:
            target.check_failed(f"status {status}")

    async def publish(self, targets: list[TargetHealth], now: float) -> None:
        """HSET this worker's view (no DEL first: a reader never sees the hash empty) and
        HDEL the fields of targets that are gone since the last publication."""
        if self.redis is None:
            return
        key = contract.health_key(self.config.node_id)
        values: dict[str, str] = {f"{t.api}/{t.version} {t.url}": json.dumps(t.describe(now)) for t in targets}
        commands: list[tuple[Arg, ...]] = []
        gone = self._fields - values.keys()
        if gone:
            commands.append(("HDEL", key, *gone))
        if values:
            commands.append(("HSET", key, *(part for item in values.items() for part in item)))
            commands.append(("PEXPIRE", key, int(self.config.node_ttl_s * 1000)))
        try:
            await self.redis.pipeline(commands)
        except (RedisError, OSError) as exc:
            log.debug("publishing upstream health failed: %s", exc)
            return
        self._fields = set(values)
