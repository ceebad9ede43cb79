"""Metering: one event per request, rejected ones included, written after the response.

The log phase only appends a tuple to an in-memory buffer. A background task
flushes the buffer every flush interval (or sooner when a batch is full) with one
pipelined round of XADDs to contract.METERING_STREAM.

Every recorded event is also appended, with one unbuffered write, to this worker's
journal file, which is emptied whenever the buffer has been written or spilled. A
worker killed with SIGKILL loses its memory but not the page cache: its successor
in the same slot moves the journal into the spill file and replays it, so the
requests it answered are still metered (at-least-once; see below).

When Redis does not take the batch, it is appended to this worker's spill file
(JSON lines) and replayed, oldest first, once Redis answers again. The spill
file holds at most ``spill_max_events``; beyond that events are dropped and
counted (tollway_gateway_metering_dropped_total), never silently. Replay is
at-least-once: a crash mid-replay can send an event twice, and analytics
deduplicates on the event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import RedisError

from gateway import contract, metrics
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.metering.schema import MeteringSettings
from gateway.redis_mux import RedisHandle
from gateway.state import RedisHealth
from gateway.types import RequestContext

log = logging.getLogger("gateway.metering")

# One event as it sits in the buffer: values in contract.METERING_FIELDS order.
Event = tuple[str, int, int | None, str, str, int | None, str, int | None, int | None, str, int, str, float, int, int]
REPLAY_CHUNK = 2_000


def _bulk(value: str) -> bytes:
    data = value.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


_FIELD_NAMES = [_bulk(name) for name in contract.METERING_FIELDS]


def xadd_command(event: Event | list[Any], maxlen: int) -> bytes:
    """RESP for XADD METERING_STREAM [MAXLEN ~ n] * field value ..., built straight from
    the event tuple: this runs once per request, so it skips every intermediate dict."""
    trim = [_bulk("MAXLEN"), _bulk("~"), _bulk(str(maxlen))] if maxlen else []
    parts = [b"*%d\r\n" % (3 + len(trim) + 2 * len(_FIELD_NAMES)), _bulk("XADD"), _bulk(contract.METERING_STREAM)]
    parts += trim
    parts.append(_bulk("*"))
    for name, value in zip(_FIELD_NAMES, event, strict=True):
        data = b"" if value is None else str(value).encode()
        parts += (name, b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


class Meter:
    def __init__(
        self,
        redis: RedisHandle,
        health: RedisHealth,
        settings: MeteringSettings,
        *,
        worker_index: int,
        workers: int,
    ) -> None:
        self.redis = redis
        self.health = health
        self.settings = settings
        self.buffer: list[Event] = []
        self.spill_dir = Path(settings.spill_dir)
        self.spill_path = self.spill_dir / f"spill-{worker_index}.jsonl"
        self.journal_path = self.spill_dir / f"journal-{worker_index}.jsonl"
        self.worker_index = worker_index
        self.workers = workers
        self._journal_fd = self._journal_open()
        self.spill_pending = self._count_lines(self.spill_path)
        metrics.METERING_SPILL_PENDING.set(self.spill_pending)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def _count_lines(path: Path) -> int:
        try:
            with path.open("rb") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0

    def _journal_open(self) -> int | None:
        """Adopt what a predecessor in this slot left in its journal (it died before its
        buffer was written), then open a fresh journal for this worker."""
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            if self.journal_path.exists():
                with self.journal_path.open("rb") as src, self.spill_path.open("ab") as dst:
                    dst.write(src.read())
                self.journal_path.unlink()
            return os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            log.error("metering journal %s unavailable, a killed worker will lose its buffer: %s",
                      self.journal_path, exc)
            return None

    def _journal_clear(self) -> None:
        # Called only when the buffer is empty and nothing was awaited since: every
        # journaled event is now in Redis or in the spill file.
        if self._journal_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._journal_fd, 0)

    # --- request path ------------------------------------------------------------------

    def record(self, event: Event) -> None:
        if self._journal_fd is not None:
            try:
                os.write(self._journal_fd, orjson.dumps(event) + b"\n")
            except OSError:
                self._journal_fd = None
                log.error("metering journal %s write failed; journaling off in this worker", self.journal_path)
        buffer = self.buffer
        buffer.append(event)
        if len(buffer) >= self.settings.batch:
            self._wake.set()
        if len(buffer) > self.settings.buffer_max:
            # Redis has been away long enough to fill memory: move the oldest to disk now.
            overflow = buffer[: len(buffer) - self.settings.buffer_max]
            del buffer[: len(overflow)]
            self._spill(overflow)
        # The buffer-size gauge is set by the flush task, not here: once per batch is
        # plenty for a gauge, and a multiprocess metric write per request is not free.

    # --- background ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metering-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.flush_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep flushing whatever happens to one batch
                log.exception("metering flush failed")

    async def flush(self) -> None:
        metrics.METERING_BUFFER.set(len(self.buffer))
        async with self._lock:
            while self.buffer:
                batch = self.buffer[: self.settings.batch]
                del self.buffer[: len(batch)]
                metrics.METERING_BUFFER.set(len(self.buffer))
                if not await self._write(batch):
                    self._spill(batch + self.buffer)
                    self.buffer.clear()
                    self._journal_clear()
                    metrics.METERING_BUFFER.set(0)
                    return
                metrics.METERING_WRITTEN.inc(len(batch))
            self._journal_clear()
            if self.spill_pending and self.health.available():
                await self._replay(self.spill_path)
            if self.worker_index == 0 and self.health.available():
                await self._replay_orphans()

    async def _write(self, events: list[Event] | list[list[Any]]) -> bool:
        if not self.health.available():
            return False
        maxlen = self.settings.stream_maxlen
        try:
            await self.redis.pipeline_raw(b"".join(xadd_command(e, maxlen) for e in events), len(events))
        except (RedisError, OSError) as exc:
            self.health.failed(exc)
            return False
        self.health.ok()
        return True

    def _spill(self, events: list[Event]) -> None:
        room = max(0, self.settings.spill_max_events - self.spill_pending)
        kept, dropped = events[:room], len(events) - min(room, len(events))
        if kept:
            try:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
                with self.spill_path.open("a", encoding="utf-8") as fh:
                    fh.write("".join(json.dumps(list(e), separators=(",", ":")) + "\n" for e in kept))
                self.spill_pending += len(kept)
                metrics.METERING_SPILLED.inc(len(kept))
                metrics.METERING_SPILL_PENDING.set(self.spill_pending)
            except OSError as exc:
                log.error("cannot spill %d metering events to %s: %s", len(kept), self.spill_path, exc)
                dropped += len(kept)
        if dropped:
            log.error("metering spill full (%d events): dropped %d", self.settings.spill_max_events, dropped)
            metrics.METERING_DROPPED.inc(dropped)

    async def _replay(self, path: Path) -> None:
        """Send the spill file to the stream chunk by chunk, never holding it all in
        memory; whatever did not go stays on disk, in order."""
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return
        sent_bytes = sent_lines = 0
        complete = True
        with fh:
            while True:
                # Lines our own _spill appends while we await Redis are read here too.
                chunk = list(itertools.islice(fh, REPLAY_CHUNK))
                if not chunk:
                    break
                events: list[list[Any]] = []
                for line in chunk:
                    with contextlib.suppress(ValueError):
                        event = json.loads(line)
                        if isinstance(event, list) and len(event) == len(contract.METERING_FIELDS):
                            events.append(event)
                for start in range(0, len(events), self.settings.batch):
                    if not await self._write(events[start : start + self.settings.batch]):
                        complete = False
                        break
                if not complete:
                    break  # the whole chunk stays: at-least-once, analytics dedupes on id
                sent_bytes += sum(len(line) for line in chunk)
                sent_lines += len(chunk)
                metrics.METERING_REPLAYED.inc(len(events))
            # No await from here on, so nothing can be appended before the file is rewritten.
            remaining = 0
            if complete:
                path.unlink(missing_ok=True)
            else:
                fh.seek(sent_bytes)
                tail = fh.read()
                remaining = tail.count(b"\n")
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(tail)
                os.replace(tmp, path)
        if path == self.spill_path:
            self.spill_pending = remaining
            metrics.METERING_SPILL_PENDING.set(self.spill_pending)
        if sent_lines:
            log.warning("replayed %d spilled metering events from %s", sent_lines, path)

    async def _replay_orphans(self) -> None:
        # Spill files of worker slots that no longer exist (GATEWAY_WORKERS was lowered).
        for path in [*self.spill_dir.glob("spill-*.jsonl"), *self.spill_dir.glob("journal-*.jsonl")]:
            try:
                index = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            if index >= self.workers:
                await self._replay(path)


class MeteringPolicy(Policy):
    NAME = "metering"
    PRIORITY = 0

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    @classmethod
    def create(cls, settings: MeteringSettings, deps: PolicyDeps) -> MeteringPolicy:
        # Its own health: a slow metering write must not flip the request path into
        # its Redis-down mode.
        meter = Meter(
            deps.metering_redis,
            RedisHealth(),
            settings,
            worker_index=deps.worker_index,
            workers=deps.config.workers,
        )
        return cls(meter)

    async def start(self) -> None:
        self.meter.start()

    async def stop(self) -> None:
        await self.meter.stop()

    def log(self, ctx: RequestContext) -> None:
        route, app, grant = ctx.route, ctx.application, ctx.grant
        self.meter.record(
            (
                ctx.event_id,
                ctx.ts_ms,
                route.api_id if route else None,
                ctx.api_slug if route else "",
                ctx.version if route else "",
                app.application_id if app else None,
                ctx.key_prefix,
                grant.subscription_id if grant else None,
                grant.plan_id if grant else None,
                ctx.request.method,
                ctx.status,
                ctx.decision,
                round((time.perf_counter() - ctx.started) * 1000, 3),
                ctx.bytes_in,
                ctx.bytes_out,
            )
        )
