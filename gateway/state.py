"""The gateway's reader of the state the portal publishes (see contract.py).

* Routes are few (one per API version) and read whole: HGETALL at start-up and
  again on every route invalidation.
* Applications, keys and tokens are many and read cache-aside: an in-process
  dict in front of a Redis GET, filled on a miss. Misses are cached briefly too,
  so a flood of made-up keys costs one Redis read per key per NEGATIVE_TTL.
* The portal PUBLISHes an Invalidation after every change; every worker listens
  and drops what changed, which is how a revoked key dies everywhere within a
  second. Pub/sub is fire-and-forget, so we also poll the generation counter:
  a generation that moved without its message arriving flushes the caches.
* When Redis does not answer, cached entries are served even past their TTL
  (a key known to be revoked stays revoked) and a miss raises StateUnavailable,
  which the version's failure mode turns into a 503 or a local decision.
* The route table and the records in cache are written to a last-known-good
  snapshot on disk, with a checksum, one file per worker. At start-up with Redis
  down the workers' files are merged; a corrupt file is refused, and with no usable
  file the worker stays not ready.
* The listener, the poller and the snapshot writer run under gateway/tasks.py's
  supervisor. A malformed message or generation value is reported there (counted,
  logged once with its text) and skipped; a loop that dies anyway is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from redis.exceptions import RedisError, ResponseError

from gateway import contract, metrics, tasks
from gateway.config import GatewayConfig
from gateway.exceptions import SnapshotError, StateUnavailable
from gateway.redis_mux import RedisHandle, new_handle
from tollway.redis_url import async_client, sentinel_master

log = logging.getLogger("gateway.state")

SNAPSHOT_FORMAT = 1
SNAPSHOT_MAX_RECORDS = 20_000  # per kind; bounds the file and the time to build it on the event loop
# After a Redis error we stop asking for this long, so that a dead Redis costs
# nothing per request instead of one timeout per request. Short, because on a busy
# box one late reply also counts as an error, and every request in the back-off
# window gets the failure mode.
REDIS_BACKOFF_S = 0.1

T = TypeVar("T")


def new_redis(config: GatewayConfig, *, timeout: float | None = None) -> RedisHandle:
    """A client whose every call gives up after the configured timeout, with no retries:
    the failure mode must take effect within that time, never after a backoff loop.
    MuxRedis on one endpoint (TCP, TLS, unix, Sentinel's master), ClusterMux on a cluster."""
    return new_handle(config.redis, timeout=config.redis_timeout_s if timeout is None else timeout)


class RedisHealth:
    """Shared by every Redis user in a worker: after a failure, skip Redis for a short while."""

    def __init__(self) -> None:
        self.down_until = 0.0
        # From the first failure until the next success, whoever saw them (the generation
        # poller asks every GATEWAY_GENERATION_POLL_S): what a request that needs no Redis
        # call of its own (an unlimited plan) goes by.
        self.outage = False

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, exc: BaseException) -> None:
        if self.available():
            log.warning("Redis unavailable: %s", exc)
        self.down_until = time.monotonic() + REDIS_BACKOFF_S
        self.outage = True
        metrics.REDIS_ERRORS.inc()

    def ok(self) -> None:
        self.down_until = 0.0
        self.outage = False


class Cache(Generic[T]):
    """A bounded dict of (record or None, loaded at, raw JSON) with FIFO eviction.
    The raw JSON is kept so that the snapshot costs no re-serialisation."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: dict[str, tuple[T | None, float, str]] = {}

    def get(self, key: str) -> tuple[T | None, float, str] | None:
        return self.entries.get(key)

    def put(self, key: str, value: T | None, loaded_at: float, raw: str = "") -> None:
        entries = self.entries
        if key not in entries and len(entries) >= self.max_entries:
            del entries[next(iter(entries))]
        entries[key] = (value, loaded_at, raw)

    def evict(self, key: str) -> None:
        self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()

    def mark_stale(self) -> None:
        """Every entry is re-read from Redis on its next use, but stays as the
        last-known-good copy should that read fail."""
        self.entries = {k: (value, 0.0, raw) for k, (value, _, raw) in self.entries.items()}


class State:
    def __init__(self, config: GatewayConfig, redis: RedisHandle, health: RedisHealth) -> None:
        self.config = config
        self.redis = redis
        self.health = health
        self.routes: dict[str, contract.RouteRecord] = {}
        self.api_slugs: frozenset[str] = frozenset()  # tells "unknown API" from "unknown version"
        self.ready = False
        # Set while Redis answers but our reads of the state fail (NOPERM, MOVED not followed,
        # WRONGTYPE...): a socket that is up is not a state we can read. /ready says so.
        self.unreadable: str | None = None
        self.apps: Cache[contract.ApplicationRecord] = Cache(config.cache_max_entries)
        self.keys: Cache[contract.KeyRecord] = Cache(config.cache_max_entries)
        self.tokens: Cache[contract.TokenRecord] = Cache(config.cache_max_entries)
        # Bumped by every invalidation; a load that raced one is stored as already stale.
        self.invalidations = 0
        # Called with every invalidation applied (the websocket policy closes revoked sockets).
        self.invalidation_listeners: list[Callable[[contract.Invalidation], None]] = []
        self.generation_seen = 0
        self._generation_behind_since: float | None = None
        self._dirty = False
        self._tasks: list[asyncio.Task[None]] = []
        # Every worker writes its own snapshot file (snapshot_file); the loader merges them.
        self.worker_index = 0
        self.snapshot_writer = True
        self._snapshot_complained = False

    # --- start-up and background work -------------------------------------------------

    async def start(self) -> None:
        try:
            await self.load_routes()
        except StateUnavailable:
            self.load_snapshot_quietly()
        # Supervised (gateway/tasks.py): a loop that dies anyway is logged, counted and
        # restarted, and /ready turns 503 while it stays down.
        self._tasks = [
            tasks.spawn("invalidations", self._listen_invalidations),
            tasks.spawn("generation", self._poll_generation),
        ]
        if self.snapshot_writer:
            self._tasks.append(tasks.spawn("snapshot", self._snapshot_loop))

    async def stop(self) -> None:
        for task, name in zip(self._tasks, ("invalidations", "generation", "snapshot"), strict=False):
            await tasks.stop(task, name)

    def load_snapshot_quietly(self) -> None:
        if self.ready:
            return
        try:
            self.load_snapshot()
        except FileNotFoundError:
            if not self._snapshot_complained:
                log.warning("Redis unavailable and no snapshot at %s: not ready", self.config.snapshot_path)
        except SnapshotError as exc:
            # Serving an empty or half-read config would turn every request into a 404:
            # better to stay not ready and let the load balancer route around us.
            if not self._snapshot_complained:
                log.error("snapshot refused, staying not ready: %s", exc)
        self._snapshot_complained = True  # once per outage is enough for the log

    async def load_routes(self) -> None:
        try:
            raw = await self.redis.hgetall(contract.ROUTES_KEY)
            generation = self.parse_generation(await self.redis.get(contract.GENERATION_KEY))
        except (RedisError, OSError) as exc:
            self.read_failed(exc)
            raise StateUnavailable(str(exc)) from exc
        self.unreadable = None
        routes: dict[str, contract.RouteRecord] = {}
        for field_name, value in raw.items():
            try:
                record = contract.RouteRecord.from_json(value)
            except ValueError as exc:
                tasks.bad_input("route", value, f"{field_name!r}: {exc}")
                continue
            routes[contract.route_field(record.api_slug, record.version)] = record
        self.routes = routes
        self.api_slugs = frozenset(r.api_slug for r in routes.values())
        self.generation_seen = max(self.generation_seen, generation)
        self.ready = True
        self._dirty = True

    @staticmethod
    def parse_generation(raw: bytes | str | None) -> int:
        """The generation counter, or 0 ("unknown": never moves generation_seen) when it is
        not a non-negative integer; a bad value is counted and logged, never fatal."""
        if raw is None:
            return 0
        try:
            generation = int(raw)
        except ValueError as exc:
            tasks.bad_input("generation", raw, exc)
            return 0
        if generation < 0:
            tasks.bad_input("generation", raw, "negative")
            return 0
        return generation

    def read_failed(self, exc: BaseException) -> None:
        self.health.failed(exc)
        if isinstance(exc, ResponseError):
            if self.unreadable is None:
                log.error("Redis answers but the state cannot be read: %s", exc)
            self.unreadable = str(exc)

    def route(self, api_slug: str, version: str) -> contract.RouteRecord | None:
        return self.routes.get(f"{api_slug}/{version}")

    def api_known(self, api_slug: str) -> bool:
        return api_slug in self.api_slugs

    # --- cache-aside readers ---------------------------------------------------------

    async def _cached(
        self,
        cache: Cache[T],
        key: str,
        redis_key: str,
        parse: Callable[[bytes | str], T],
    ) -> T | None:
        now = time.monotonic()
        hit = cache.get(key)
        if hit is not None:
            value, loaded_at, _ = hit
            ttl = self.config.cache_ttl_s if value is not None else self.config.negative_ttl_s
            if now - loaded_at < ttl:
                return value
            if not self.health.available():
                return value  # stale beats nothing while Redis is away
        elif not self.health.available():
            raise StateUnavailable("Redis unavailable")
        before = self.invalidations
        try:
            raw = await self.redis.get(redis_key)
        except (RedisError, OSError) as exc:
            self.read_failed(exc)
            if hit is not None:
                return hit[0]
            raise StateUnavailable(str(exc)) from exc
        self.health.ok()
        text = "" if raw is None else raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            loaded = parse(raw) if raw is not None else None
        except ValueError as exc:
            tasks.bad_input("record", raw, f"{redis_key}: {exc}")
            loaded, text = None, ""
        # An invalidation that arrived while we were reading may describe a newer
        # value than the one we got: keep it, but as already stale.
        cache.put(key, loaded, now if before == self.invalidations else 0.0, text)
        self._dirty = True
        return loaded

    async def application(self, application_id: int) -> contract.ApplicationRecord | None:
        return await self._cached(
            self.apps, str(application_id), contract.app_key(application_id), contract.ApplicationRecord.from_json
        )

    async def key(self, key_hash: str) -> contract.KeyRecord | None:
        return await self._cached(self.keys, key_hash, contract.key_key(key_hash), contract.KeyRecord.from_json)

    async def token(self, token_hash: str) -> contract.TokenRecord | None:
        return await self._cached(
            self.tokens, token_hash, contract.token_key(token_hash), contract.TokenRecord.from_json
        )

    # --- invalidation ------------------------------------------------------------------

    def clear_caches(self) -> None:
        # Marked stale, not dropped: this runs on every (re)subscription, i.e. right
        # after Redis comes back, when reads may still fail (AOF loading, reconnects).
        # Dropping the entries then answered 503 credentials-unavailable for keys we
        # had just been serving; a stale copy is what an outage serves anyway.
        self.invalidations += 1
        self.apps.mark_stale()
        self.keys.mark_stale()
        self.tokens.mark_stale()

    async def apply_invalidation(self, inv: contract.Invalidation) -> None:
        self.invalidations += 1
        if inv.generation:
            self.generation_seen = max(self.generation_seen, inv.generation)
        if inv.kind == "key":
            self.keys.evict(inv.id)
        elif inv.kind == "app":
            self.apps.evict(inv.id)
        elif inv.kind == "token":
            if inv.id:
                self.tokens.evict(inv.id)
            else:
                self.tokens.clear()
        elif inv.kind == "route":
            with contextlib.suppress(StateUnavailable):
                await self.load_routes()
        else:  # "all" and anything newer than us: drop everything
            self.clear_caches()
            with contextlib.suppress(StateUnavailable):
                await self.load_routes()
        metrics.INVALIDATIONS.labels(inv.kind).inc()
        for listener in self.invalidation_listeners:
            listener(inv)

    async def _pubsub_moved(self, subscribed_to: tuple[str, int] | None) -> bool:
        """Sentinel only: has the master moved since we subscribed? Our subscription on a
        demoted master would go on receiving what is replicated to it, but not for long if
        that node goes away: move to the new master, as the request path does."""
        if subscribed_to is None:
            return False
        try:
            return await sentinel_master(self.config.redis, timeout=self.config.redis_timeout_s * 10) != subscribed_to
        except (RedisError, OSError):
            return False  # no sentinel answers: keep what we have

    async def _listen_invalidations(self) -> None:
        target = self.config.redis
        attempt = 0
        while True:
            tasks.beat("invalidations")
            # A dedicated connection without the short socket timeout: it blocks on purpose.
            # On a cluster, classic PUBLISH reaches every node: listen on one seed node, the
            # next one after a failure (async_client). With Sentinel, the current master.
            client = async_client(target, socket_connect_timeout=self.config.redis_timeout_s * 10, node=attempt)
            attempt += 1
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                subscribed_to = (
                    await sentinel_master(target, timeout=self.config.redis_timeout_s * 10)
                    if target.kind == "sentinel"
                    else None
                )
                await pubsub.subscribe(contract.INVALIDATION_CHANNEL)
                # Anything published while we were not subscribed is lost: start clean.
                self.clear_caches()
                await self.load_routes()
                while True:
                    tasks.beat("invalidations")
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None and await self._pubsub_moved(subscribed_to):
                        log.warning("Sentinel moved the master away from %s; resubscribing", subscribed_to)
                        raise StateUnavailable("master moved")
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        inv = contract.Invalidation.from_json(message["data"])
                    except (ValueError, TypeError) as exc:  # not JSON, or a field of the wrong type
                        tasks.bad_input("invalidation", message.get("data"), exc)
                        continue
                    await self.apply_invalidation(inv)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await client.aclose()
                raise
            except (RedisError, OSError, StateUnavailable) as exc:
                log.debug("invalidation listener lost Redis: %s", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
                self.load_snapshot_quietly()
                await asyncio.sleep(0.2)

    async def _poll_generation(self) -> None:
        """Belt and braces for pub/sub: a generation that moved without its message
        (a dropped connection, a slow consumer) flushes the caches."""
        interval = self.config.generation_poll_s
        while True:
            tasks.beat("generation")
            await asyncio.sleep(interval)
            try:
                generation = self.parse_generation(await self.redis.get(contract.GENERATION_KEY))
            except (RedisError, OSError) as exc:
                self.read_failed(exc)
                self.load_snapshot_quietly()
                continue
            self.health.ok()
            self.unreadable = None
            if not self.ready:
                with contextlib.suppress(StateUnavailable):
                    await self.load_routes()
            if generation <= self.generation_seen:
                self._generation_behind_since = None
                continue
            now = time.monotonic()
            if self._generation_behind_since is None:
                # The message is probably in flight; give it one more poll.
                self._generation_behind_since = now
                continue
            log.warning("generation %s seen without its invalidation; flushing caches", generation)
            self.clear_caches()
            with contextlib.suppress(StateUnavailable):
                await self.load_routes()
            self.generation_seen = generation
            self._generation_behind_since = None

    # --- snapshot ----------------------------------------------------------------------

    def snapshot_payload(self) -> dict[str, Any]:
        def records(cache: Cache[Any]) -> dict[str, str]:
            out: dict[str, str] = {}
            for k, (value, _, raw) in cache.entries.items():
                if value is not None and raw:
                    out[k] = raw
                    if len(out) >= SNAPSHOT_MAX_RECORDS:
                        break
            return out

        body = {
            "routes": {k: r.to_json() for k, r in self.routes.items()},
            "apps": records(self.apps),
            "keys": records(self.keys),
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return {
            "format": SNAPSHOT_FORMAT,
            "contract_version": contract.CONTRACT_VERSION,
            "generation": self.generation_seen,
            "written_at": time.time(),
            "sha256": hashlib.sha256(canonical.encode()).hexdigest(),
            "body": body,
        }

    def snapshot_file(self, worker_index: int) -> Path:
        """Worker 0's file is GATEWAY_SNAPSHOT_PATH itself; worker i writes a sibling,
        ``<name>.worker<i><suffix>`` (snapshot.worker1.json), so that every worker's
        cache is kept, not worker 0's alone."""
        path = Path(self.config.snapshot_path)
        if worker_index == 0:
            return path
        return path.with_name(f"{path.stem}.worker{worker_index}{path.suffix}")

    def write_snapshot(self, payload: dict[str, Any] | None = None) -> None:
        if payload is None:
            if not self.ready:
                return  # never overwrite a good snapshot with an empty table
            payload = self.snapshot_payload()
        path = self.snapshot_file(self.worker_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, separators=(",", ":")))
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half

    @staticmethod
    def read_snapshot_file(path: Path) -> tuple[dict[str, Any], dict[str, contract.RouteRecord],
                                               dict[str, contract.ApplicationRecord], dict[str, contract.KeyRecord]]:
        """One file, checked: (payload, routes, apps, keys); SnapshotError if it is not usable."""
        raw = path.read_bytes()
        try:
            payload = json.loads(raw)
            body = payload["body"]
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
            if hashlib.sha256(canonical.encode()).hexdigest() != payload["sha256"]:
                raise SnapshotError(f"{path}: checksum mismatch")
            if payload.get("format") != SNAPSHOT_FORMAT or payload.get("contract_version") != contract.CONTRACT_VERSION:
                raise SnapshotError(f"{path}: format or contract version differs")
            routes = {k: contract.RouteRecord.from_json(v) for k, v in body["routes"].items()}
            apps = {k: contract.ApplicationRecord.from_json(v) for k, v in body["apps"].items()}
            keys = {k: contract.KeyRecord.from_json(v) for k, v in body["keys"].items()}
        except SnapshotError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SnapshotError(f"{path}: unreadable ({exc.__class__.__name__}: {exc})") from exc
        return payload, routes, apps, keys

    def load_snapshot(self) -> None:
        """Merge the snapshot files of every worker slot (0 .. GATEWAY_WORKERS-1). The
        route table comes from the newest readable file; records from all of them, a
        newer file's copy winning. A corrupt file is refused and skipped; with no usable
        file at all the worker stays not ready (SnapshotError, or FileNotFoundError when
        there is none)."""
        usable = []
        refused: list[SnapshotError] = []
        for index in range(self.config.workers):
            path = self.snapshot_file(index)
            try:
                usable.append((path, *self.read_snapshot_file(path)))
            except FileNotFoundError:
                continue
            except SnapshotError as exc:
                refused.append(exc)
        if not usable:
            if refused:
                raise refused[0]
            raise FileNotFoundError(self.config.snapshot_path)
        for problem in refused:
            if not self._snapshot_complained:
                log.error("snapshot refused, merging the other workers' files only: %s", problem)
        usable.sort(key=lambda u: (int(u[1].get("generation") or 0), float(u[1].get("written_at") or 0)))
        for _, payload, _, apps, keys in usable:  # oldest first: a newer file's copy wins
            body = payload["body"]
            # Loaded entries count as stale (loaded_at 0): refreshed from Redis as soon as it answers.
            for k, app in apps.items():
                self.apps.put(k, app, 0.0, body["apps"][k])
            for k, key in keys.items():
                self.keys.put(k, key, 0.0, body["keys"][k])
        newest_path, newest, routes = usable[-1][0], usable[-1][1], usable[-1][2]
        self.routes = routes
        self.api_slugs = frozenset(r.api_slug for r in routes.values())
        self.generation_seen = int(newest.get("generation") or 0)
        self.ready = True
        metrics.SNAPSHOT_LOADS.inc()
        log.warning(
            "loaded last-known-good snapshot %s and %d other worker file(s) (%d routes, %d keys)",
            newest_path, len(usable) - 1, len(routes), len(self.keys.entries),
        )

    async def _snapshot_loop(self) -> None:
        while True:
            tasks.beat("snapshot")
            if self._dirty and self.ready and self.health.available():
                # Built here, on the loop, where nothing mutates the caches under us;
                # only the file write goes to a thread.
                payload = self.snapshot_payload()
                self._dirty = False
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.write_snapshot, payload)
                except OSError as exc:
                    log.error("cannot write snapshot %s: %s", self.snapshot_file(self.worker_index), exc)
            await asyncio.sleep(self.config.snapshot_interval_s if self.ready else 1.0)
