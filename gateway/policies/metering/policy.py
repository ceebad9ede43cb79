"""Metering: every request becomes a contract.MeteredRequest, refusals included, and
leaves the worker in batches; what the gateway admitted is billed, exactly, through
crashes and replays.

Batches. The log phase appends the request's record to an in-memory buffer, one per
metering partition (``contract.metering_partition(subscription_id, METERING_PARTITIONS)``).
A background task seals the buffers every ``GATEWAY_METERING_FLUSH_MS`` (sooner when one
holds ``GATEWAY_METERING_BATCH`` requests) into batches and sends each as ONE stream entry,
``XADD metering_stream(p) [MAXLEN ~ n] * b <encode_batch(batch)>``, all of a round in one
pipeline. A batch id is ``<GATEWAY_NODE_ID>:<worker>:<boot ms>:<seq>``: unique across the
fleet, and it stays with the batch through the journal, the spill file and every replay,
so analytics deduplicates by batch id.

Journal at admission (gateway/policies/metering/journal.py has the line formats). Each
worker stores its lines into ``journal-<worker>.jsonl`` through a shared memory mapping
of the file (journal.Writer): the stores are in the page cache at once, so they survive a
SIGKILL as unbuffered writes would (a lost machine is another matter), and cost no
system call:

* when the access phase has admitted a request, before it goes upstream: one "A" line,
  the record as known then (status 0, outcome unknown). After the response the complete
  record (that record with the response's fields put in) lives in memory only, so an
  admitted request costs one line;
* when a request is answered without being admitted (401, 403, 404, 429, a preflight...):
  one "R" line with its complete record, in the log phase. Also one line; nothing is
  written twice for any request;
* when a batch is sealed: one "B" line with the batch, its id and the numbers of the
  requests it covers, before the batch is sent (or spilled).

The journal is rewritten to what is still open (the header, A/R lines of requests not in
a sealed batch, B lines not yet sent) into a new file when it grows past
JOURNAL_COMPACT_BYTES at a flush, or at once when the next line does not fit the file
(journal.JOURNAL_CAPACITY); and emptied when nothing is open (an empty journal: nothing
to adopt).

The worker that takes over a slot adopts its predecessor's journal into its spill file
before it serves: sealed batches keep their ids (they may have reached Redis: analytics
drops the copy), admitted requests that no batch covers are billed with
``outcome=OUTCOME_UNKNOWN``, status 0, decision "allowed" (in flight, or answered but not
yet sealed), refusals with their complete record. Hence the promise:
billed = admitted at the gateway, exactly; a SIGKILL costs at most the status, latency and
sizes of the requests it interrupted, never the request.

Redis down. A batch Redis does not take goes to ``spill-<worker>.jsonl``, one batch per
line with its id, and is replayed oldest first once Redis answers. The spill file holds
at most ``GATEWAY_SPILL_MAX_EVENTS`` requests; a batch that does not fit is dropped whole
and counted (tollway_gateway_metering_dropped_total), never silently. Worker 0 also
adopts and replays the journals and spill files of slots that no longer exist
(GATEWAY_WORKERS lowered), looking for them at its first flush and then at most once a
second (ORPHAN_SCAN_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from pathlib import Path

import msgspec
from redis.exceptions import RedisError

from gateway import contract, metrics, tasks
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.metering import journal
from gateway.policies.metering.endpoint import OTHER, EndpointLabels
from gateway.policies.metering.schema import MeteringSettings
from gateway.redis_mux import Arg, RedisHandle
from gateway.state import RedisHealth
from gateway.types import RequestContext

log = logging.getLogger("gateway.metering")

REPLAY_CHUNK = 100  # spill lines (batches) per pipelined round
JOURNAL_COMPACT_BYTES = 4 * 1024 * 1024
STOP_ROUNDS = 5
# Worker 0 looks for departed slots' files at its first flush and then at most this
# often: a directory scan per flush (several a second under load) costs more than the
# files, which only a restart with fewer workers leaves, are worth.
ORPHAN_SCAN_S = 1.0


class Meter:
    def __init__(
        self,
        redis: RedisHandle,
        health: RedisHealth,
        settings: MeteringSettings,
        *,
        worker_index: int,
        workers: int,
        node_id: str = "gateway",
        partitions: int = contract.DEFAULT_METERING_PARTITIONS,
    ) -> None:
        self.redis = redis
        self.health = health
        self.settings = settings
        self.worker_index = worker_index
        self.workers = workers
        self.partitions = max(1, partitions)
        self.header = journal.Header(node=node_id, worker=worker_index, boot_ms=int(time.time() * 1000))
        self.batch_prefix = self.header.batch_prefix
        self._header_line = journal.line(self.header)
        self.seq = 0
        # Per partition: the records waiting to be sealed and their journal numbers (0: none).
        self.buffers: list[list[contract.MeteredRequest]] = [[] for _ in range(self.partitions)]
        self.numbers: list[list[int]] = [[] for _ in range(self.partitions)]
        self.buffered = 0
        self.labels = EndpointLabels()
        # Journal bookkeeping: request numbers, the admitted requests in flight (by event
        # id: their number and admission record), and the lines still open (A/R lines not
        # in a sealed batch, B lines not sent).
        self.next_number = 0
        self.in_flight: dict[str, tuple[int, contract.MeteredRequest]] = {}
        self.open_requests: dict[int, bytes] = {}
        self.open_batches: dict[str, bytes] = {}
        self.spill_dir = Path(settings.spill_dir)
        self.spill_path = self.spill_dir / f"spill-{worker_index}.jsonl"
        self.journal_path = self.spill_dir / f"journal-{worker_index}.jsonl"
        self._journal = self._journal_open()
        self.spill_pending = journal.spill_count(self.spill_path)
        metrics.METERING_SPILL_PENDING.set(self.spill_pending)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._orphans_due = 0.0

    # --- journal -------------------------------------------------------------------------

    def _fallback_header(self, path: Path) -> journal.Header:
        # A journal without its header line (it could not be written): the file's age
        # stands in for the boot time, stable across re-adoptions.
        with contextlib.suppress(OSError):
            return journal.Header(self.header.node, self.worker_index, path.stat().st_mtime_ns // 1_000_000)
        return journal.Header(self.header.node, self.worker_index, 0)

    def _adopt(self, journal_path: Path, spill_path: Path) -> None:
        counts = journal.journal_adopt(journal_path, spill_path, self._fallback_header(journal_path))
        for kind in ("sealed", "unknown", "refused"):
            if counts.get(kind):
                metrics.METERING_RECOVERED.labels(kind).inc(counts[kind])

    def _journal_open(self) -> journal.Writer | None:
        """Adopt what a predecessor in this slot left in its journal, then start a fresh one."""
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._adopt(self.journal_path, self.spill_path)
            for tmp in self.spill_dir.glob(f"{self.journal_path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)  # a compaction a kill cut short: the journal is whole
            # Empty while nothing is open: the header goes in front of the first line.
            return journal.Writer(self.journal_path)
        except OSError as exc:
            log.error("metering journal %s unavailable, a killed worker will lose what it admitted: %s",
                      self.journal_path, exc)
            return None

    @property
    def journal_bytes(self) -> int:
        return self._journal.size if self._journal is not None else 0

    def _journal_write(self, data: bytes) -> bool:
        writer = self._journal
        if writer is None:
            return False
        if writer.append(data if writer.size else self._header_line + data):
            return True
        # The file is full: compact it now (no await in here: the open lines are exactly
        # what is in the file), into a file with room for this line too.
        writer = self._journal_rewrite(len(data))
        if writer is not None and writer.append(data):
            return True
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        log.error("metering journal %s full and not compacted; journaling off in this worker", self.journal_path)
        return False

    def _journal_rewrite(self, room: int = 0) -> journal.Writer | None:
        """A new journal file holding what is open, with room for `room` more bytes."""
        data = b"".join([self._header_line, *self.open_batches.values(), *self.open_requests.values()])
        try:
            writer = journal.Writer(self.journal_path, data, max(journal.JOURNAL_CAPACITY, 2 * (len(data) + room)))
        except OSError as exc:
            log.error("metering journal %s compaction failed: %s", self.journal_path, exc)
            return None
        if self._journal is not None:
            self._journal.close()
        self._journal = writer
        return writer

    def _journal_compact(self) -> None:
        """Drop what is closed. No await in here: the open lines are exactly what is on disk."""
        writer = self._journal
        if writer is None:
            return
        if not self.open_requests and not self.open_batches:
            writer.clear()
            return
        if writer.size > JOURNAL_COMPACT_BYTES:
            self._journal_rewrite()

    # --- request path ------------------------------------------------------------------

    def admit(self, ctx: RequestContext) -> None:
        """The access phase let the request through: journal it before it goes upstream."""
        if self._journal is None:
            return
        self.next_number += 1
        n = self.next_number
        request = self._record(ctx, admitted=True)
        data = journal.line(journal.Admitted(n, request))
        if self._journal_write(data):
            self.open_requests[n] = data
            self.in_flight[ctx.event_id] = (n, request)

    def record(self, ctx: RequestContext) -> None:
        """After the response. An admitted request's record stays in memory (its admission
        is journalled); a refused one is journalled now, complete."""
        admitted = self.in_flight.pop(ctx.event_id, None)
        if admitted is not None:
            n, request = admitted
            request = self._answered(ctx, request)
        else:
            n = 0
            request = self._record(ctx)
            if self._journal is not None:
                self.next_number += 1
                data = journal.line(journal.Refused(self.next_number, request))
                if self._journal_write(data):
                    n = self.next_number
                    self.open_requests[n] = data
        p = contract.metering_partition(request.subscription_id, self.partitions)
        buffer = self.buffers[p]
        buffer.append(request)
        self.numbers[p].append(n)
        self.buffered += 1
        if len(buffer) >= self.settings.batch:
            self._wake.set()
        if self.buffered > self.settings.buffer_max:
            # Redis has been slow long enough to fill memory: seal this partition and
            # move it to disk now. The buffer-size gauge is set by the flush task: a
            # multiprocess metric write per request is not free.
            self._spill(self._seal(p))

    def _record(self, ctx: RequestContext, *, admitted: bool = False) -> contract.MeteredRequest:
        route, app, grant = ctx.route, ctx.application, ctx.grant
        if admitted:  # as billed if the worker dies before the response
            status, decision, outcome = 0, "allowed", contract.OUTCOME_UNKNOWN
            latency, bytes_in, bytes_out = 0.0, 0, 0
        else:
            status, decision, outcome = _status(ctx.status), ctx.decision, ""
            latency = round((time.perf_counter() - ctx.started) * 1000, 3)
            bytes_in, bytes_out = ctx.bytes_in, ctx.bytes_out
        # Positional, in MeteredRequest's field order (a third cheaper than keywords).
        if route is not None:
            return contract.MeteredRequest(
                ctx.ts_ms, route.api_id, ctx.api_slug, ctx.version,
                app.application_id if app else 0, ctx.key_prefix,
                grant.subscription_id if grant else 0, grant.plan_id if grant else 0,
                ctx.request.method, status, decision, latency, bytes_in, bytes_out,
                self.labels.label(route.version_id, ctx.upstream_path, status), outcome,
            )
        return contract.MeteredRequest(
            ctx.ts_ms, 0, "", "", app.application_id if app else 0, ctx.key_prefix,
            grant.subscription_id if grant else 0, grant.plan_id if grant else 0,
            ctx.request.method, status, decision, latency, bytes_in, bytes_out, "", outcome,
        )

    def _answered(self, ctx: RequestContext, admitted: contract.MeteredRequest) -> contract.MeteredRequest:
        """An admitted request's complete record: its admission record (who, what, when:
        none of it changes after the access phase) with the response's fields put in."""
        status = _status(ctx.status)
        endpoint = admitted.endpoint
        if endpoint == OTHER and ctx.route is not None:
            # Not a learned label at admission: this answer may teach it (a known one stays).
            endpoint = self.labels.label(ctx.route.version_id, ctx.upstream_path, status)
        return msgspec.structs.replace(
            admitted, status=status, decision=ctx.decision,
            latency_ms=round((time.perf_counter() - ctx.started) * 1000, 3),
            bytes_in=ctx.bytes_in, bytes_out=ctx.bytes_out, endpoint=endpoint, outcome="",
        )

    # --- batches -----------------------------------------------------------------------

    def _seal(self, p: int) -> list[contract.MeteringBatch]:
        """Cut partition p's buffer into batches, each journalled (B line) before it leaves."""
        requests, numbers = self.buffers[p], self.numbers[p]
        if not requests:
            return []
        self.buffers[p], self.numbers[p] = [], []
        self.buffered -= len(requests)
        size = self.settings.batch
        batches = []
        for start in range(0, len(requests), size):
            self.seq += 1
            batch = contract.MeteringBatch(
                v=contract.METERING_BATCH_VERSION, id=f"{self.batch_prefix}{self.seq}",
                requests=requests[start : start + size],
            )
            covered = [n for n in numbers[start : start + size] if n]
            if self._journal is not None:
                data = journal.line(journal.Sealed(covered, batch))
                if self._journal_write(data):
                    self.open_batches[batch.id] = data
            for n in covered:
                self.open_requests.pop(n, None)
            batches.append(batch)
        return batches

    def _delivered(self, batches: list[contract.MeteringBatch]) -> None:
        """In Redis or in the spill file: the B lines may go at the next compaction."""
        for batch in batches:
            self.open_batches.pop(batch.id, None)

    # --- background ----------------------------------------------------------------------

    def start(self) -> None:
        # Supervised (gateway/tasks.py): should the loop die anyway, it is restarted.
        self._task = tasks.spawn("metering-flush", self._run)

    async def stop(self) -> None:
        await tasks.stop(self._task, "metering-flush")
        for _ in range(STOP_ROUNDS):  # the server has stopped: nothing new arrives for long
            await self.flush()
            if not self.buffered:
                break

    async def _run(self) -> None:
        while True:
            tasks.beat("metering-flush")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.flush_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep flushing whatever happens to one batch
                log.exception("metering flush failed")

    async def flush(self) -> None:
        """One round: seal every partition's buffer, send the batches in one pipeline (or
        spill them), tidy the journal, then replay what waits on disk. Requests that
        arrive meanwhile wait for the next round (a full buffer wakes it at once)."""
        async with self._lock:
            batches = [b for p in range(self.partitions) for b in self._seal(p)]
            metrics.METERING_BUFFER.set(self.buffered)
            if batches:
                if await self._write(batches):
                    metrics.METERING_WRITTEN.inc(sum(len(b.requests) for b in batches))
                    self._delivered(batches)
                else:
                    self._spill(batches)
            self._journal_compact()
            if self.spill_pending and self.health.available():
                await self._replay(self.spill_path)
            if self.worker_index == 0 and self.health.available() and time.monotonic() >= self._orphans_due:
                self._orphans_due = time.monotonic() + ORPHAN_SCAN_S
                await self._replay_orphans()

    def _xadd(self, batch: contract.MeteringBatch) -> tuple[Arg, ...]:
        p = contract.metering_partition(batch.requests[0].subscription_id, self.partitions)
        maxlen = self.settings.stream_maxlen
        trim: tuple[Arg, ...] = ("MAXLEN", "~", maxlen) if maxlen else ()
        return ("XADD", contract.metering_stream(p), *trim, "*", contract.METERING_BATCH_FIELD,
                contract.encode_batch(batch))

    async def _write(self, batches: list[contract.MeteringBatch]) -> bool:
        if not batches:
            return True
        if not self.health.available():
            return False
        commands = [self._xadd(b) for b in batches]
        replicas = self.settings.wait_replicas
        if replicas:
            commands.append(("WAIT", replicas, self.settings.wait_ms))
        try:
            replies = await self.redis.pipeline(commands)
        except (RedisError, OSError) as exc:
            self.health.failed(exc)
            return False
        self.health.ok()
        if replicas and int(replies[-1]) < replicas:
            # Only the master holds these batches. After a Sentinel failover that is the old
            # master, which keeps taking writes until it is demoted and then discards them: so
            # they count as not sent. Spilled and replayed (to the new master once this
            # connection gets READONLY); a batch that did arrive is counted once by its id.
            metrics.METERING_UNREPLICATED.inc(sum(len(b.requests) for b in batches))
            return False
        return True

    def _spill(self, batches: list[contract.MeteringBatch]) -> None:
        kept: list[contract.MeteringBatch] = []
        dropped = 0
        room = self.settings.spill_max_events - self.spill_pending
        for batch in batches:
            if len(batch.requests) <= room:
                kept.append(batch)
                room -= len(batch.requests)
            else:
                dropped += len(batch.requests)
        events = sum(len(b.requests) for b in kept)
        if kept:
            try:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
                with self.spill_path.open("ab") as fh:
                    fh.write(b"".join(journal.line(b) for b in kept))
                self.spill_pending += events
                metrics.METERING_SPILLED.inc(events)
                metrics.METERING_SPILL_PENDING.set(self.spill_pending)
            except OSError as exc:
                log.error("cannot spill %d metering events to %s: %s", events, self.spill_path, exc)
                dropped += events
        if dropped:
            log.error("metering spill full (%d events): dropped %d", self.settings.spill_max_events, dropped)
            metrics.METERING_DROPPED.inc(dropped)
        # Spilled, or dropped and counted: either way the journal need not keep them.
        self._delivered(batches)

    async def _replay(self, path: Path) -> None:
        """Send a spill file to the streams chunk by chunk, never holding it all in
        memory; whatever did not go stays on disk, in order, each batch with its id."""
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return
        sent_bytes = sent_events = 0
        complete = True
        with fh:
            while True:
                # Lines our own _spill appends while we await Redis are read here too.
                chunk = list(itertools.islice(fh, REPLAY_CHUNK))
                if not chunk:
                    break
                batches = []
                for raw in chunk:
                    batch = journal.spill_decode(raw)
                    if batch is None or not batch.requests:
                        if raw.strip():
                            log.error("unreadable metering spill line in %s, dropped: %r", path, raw[:200])
                            metrics.METERING_DROPPED.inc()
                        continue
                    batches.append(batch)
                if not await self._write(batches):
                    complete = False
                    break  # the whole chunk stays: at-least-once, analytics dedupes by batch id
                events = sum(len(b.requests) for b in batches)
                sent_bytes += sum(len(raw) for raw in chunk)
                sent_events += events
                metrics.METERING_REPLAYED.inc(events)
            # No await from here on, so nothing can be appended before the file is rewritten.
            if complete:
                path.unlink(missing_ok=True)
            else:
                fh.seek(sent_bytes)
                tail = fh.read()
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(tail)
                os.replace(tmp, path)
        if path == self.spill_path:
            self.spill_pending = 0 if complete else max(0, self.spill_pending - sent_events)
            metrics.METERING_SPILL_PENDING.set(self.spill_pending)
        if sent_events:
            log.warning("replayed %d spilled metering events from %s", sent_events, path)

    async def _replay_orphans(self) -> None:
        # Journals and spill files of worker slots that no longer exist (GATEWAY_WORKERS was lowered).
        for path in sorted(self.spill_dir.glob("journal-*.jsonl")):
            index = _slot(path)
            if index is not None and index >= self.workers:
                self._adopt(path, path.with_name(f"spill-{index}.jsonl"))
        for path in sorted(self.spill_dir.glob("spill-*.jsonl")):
            index = _slot(path)
            if index is not None and index >= self.workers:
                await self._replay(path)


def _status(status: int) -> int:
    # RFC 9110 has no status outside 100-599; an upstream sent one (aiohttp relays
    # 600-999). Analytics refuses a batch holding one, so it is metered as the 502 it is.
    return status if 100 <= status <= 599 else 502


def _slot(path: Path) -> int | None:
    try:
        return int(path.stem.split("-", 1)[1])
    except ValueError:
        return None


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
            node_id=deps.config.node_id,
            partitions=deps.config.metering_partitions,
        )
        return cls(meter)

    async def start(self) -> None:
        self.meter.start()

    async def stop(self) -> None:
        await self.meter.stop()

    def admit(self, ctx: RequestContext) -> None:
        self.meter.admit(ctx)

    def log(self, ctx: RequestContext) -> None:
        self.meter.record(ctx)

