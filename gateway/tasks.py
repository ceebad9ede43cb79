"""Background tasks that survive: a small supervisor for a worker's long-running loops.

Every background loop of a worker (the invalidation listener, the generation poller,
the snapshot writer, the metering flusher, the fleet announcer) runs under ``spawn``:

* An exception that escapes the loop is logged (with its traceback the first time a
  given error occurs in that task, then once a minute at most), counted in
  ``tollway_gateway_task_restarts_total{task}``, and the loop is started again after a
  backoff that grows from 0.1 s to 2 s and resets once a run has lasted 10 s.
* A task is *down* from the moment it dies until a new run of it has lasted
  HEALTHY_AFTER_S. ``/_tollway/ready`` answers 503 once any task has been down for
  more than READY_DOWN_S (``longest_down``): a worker whose invalidations stopped is
  taken out of the load balancer rather than serving stale keys silently.
* A loop may call ``beat(name)`` each time round; the time is exported as
  ``tollway_gateway_task_last_alive_seconds{task}`` (the oldest over the workers).

Bad input on an internal channel (a malformed invalidation, a non-numeric generation
counter) is not an error of the task: the loop reports it with ``bad_input`` and goes
on. It is counted in ``tollway_gateway_bad_messages_total{source}`` every time and
logged, with the offending text, the first time that text is seen.

Each worker is its own process, so the registry is module state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway import metrics

log = logging.getLogger("gateway.tasks")

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0
BACKOFF_RESET_AFTER_S = 10.0  # a run this long resets the backoff
HEALTHY_AFTER_S = 1.0  # a restarted task counts as up once it has run this long
READY_DOWN_S = 3.0  # /ready turns 503 when a task has been down longer than this
MAX_REMEMBERED = 256  # distinct errors / bad texts remembered for "log once"
SNIPPET_CHARS = 300  # of an offending message, in the log line
REPEAT_LOG_S = 60.0  # an error seen before is logged again (without traceback) at most this often

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Supervised:
    name: str
    factory: LoopFactory
    task: asyncio.Task[None] | None = None
    started_at: float = 0.0  # monotonic, of the current run
    down_since: float | None = None  # monotonic; None while up
    restarts: int = 0
    last_alive: float = 0.0  # wall clock
    seen_errors: dict[str, float] = field(default_factory=dict)  # error signature -> last logged (monotonic)

    def down_for(self, now: float) -> float:
        if self.down_since is None:
            return 0.0
        running = self.task is not None and not self.task.done() and self.started_at > 0
        if running and now - self.started_at >= HEALTHY_AFTER_S:
            self.down_since = None  # this run has lasted: up again
            return 0.0
        return now - self.down_since


_tasks: dict[str, Supervised] = {}
_bad_seen: dict[tuple[str, str], None] = {}


def spawn(name: str, factory: LoopFactory) -> asyncio.Task[None]:
    """Run ``factory()`` under supervision, as task ``name`` (one per name per worker).
    Cancel the returned task to stop it; the loop's own cancellation is passed through."""
    entry = Supervised(name=name, factory=factory)
    _tasks[name] = entry
    entry.task = asyncio.create_task(_supervise(entry), name=f"supervise-{name}")
    return entry.task


async def _supervise(entry: Supervised) -> None:
    backoff = BACKOFF_FIRST_S
    restarts = metrics.TASK_RESTARTS.labels(entry.name)
    while True:
        entry.started_at = time.monotonic()
        beat(entry.name)
        try:
            await entry.factory()
            error: BaseException | None = None
            signature = "returned"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the point of the supervisor: nothing escapes
            error = exc
            signature = f"{type(exc).__name__}: {exc}"[:SNIPPET_CHARS]
        now = time.monotonic()
        ran = now - entry.started_at
        if entry.down_since is None or ran >= HEALTHY_AFTER_S:
            entry.down_since = now
        if ran >= BACKOFF_RESET_AFTER_S:
            backoff = BACKOFF_FIRST_S
        entry.restarts += 1
        restarts.inc()
        _log_death(entry, signature, error, backoff, now)
        entry.started_at = 0.0
        await asyncio.sleep(backoff)
        backoff = min(BACKOFF_MAX_S, backoff * 2)


def _log_death(entry: Supervised, signature: str, error: BaseException | None, backoff: float, now: float) -> None:
    last = entry.seen_errors.get(signature)
    if last is None:
        if len(entry.seen_errors) >= MAX_REMEMBERED:
            entry.seen_errors.clear()
        entry.seen_errors[signature] = now
        log.error(
            "background task %s died (%s); restarting in %.1fs", entry.name, signature, backoff, exc_info=error
        )
    elif now - last >= REPEAT_LOG_S:
        entry.seen_errors[signature] = now
        log.error("background task %s died again (%s, %d restarts so far)", entry.name, signature, entry.restarts)


def beat(name: str) -> None:
    """Called by a loop each time round: records when it was last alive."""
    entry = _tasks.get(name)
    now = time.time()
    if entry is not None:
        if now - entry.last_alive < 1.0:
            return  # a multiprocess gauge write per loop turn is not free: once a second is plenty
        entry.last_alive = now
    metrics.TASK_LAST_ALIVE.labels(name).set(now)


def longest_down() -> tuple[str, float]:
    """The task that has been down longest in this worker, and for how long (0 if none)."""
    now = time.monotonic()
    worst, seconds = "", 0.0
    for entry in _tasks.values():
        down = entry.down_for(now)
        if down > seconds:
            worst, seconds = entry.name, down
    return worst, seconds


def all_up() -> bool:
    """What /ready asks: has no task been down for more than READY_DOWN_S?"""
    return longest_down()[1] <= READY_DOWN_S


def forget(name: str) -> None:
    _tasks.pop(name, None)


async def stop(task: asyncio.Task[None] | None, name: str = "") -> None:
    """Cancel a supervised task and wait for it."""
    if name:
        forget(name)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def bad_input(source: str, raw: object, error: BaseException | str) -> None:
    """A malformed message or value on an internal channel: count it, log it the first
    time this text is seen (with the text), and let the caller go on."""
    metrics.BAD_MESSAGES.labels(source).inc()
    text = raw[:SNIPPET_CHARS].decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)[:SNIPPET_CHARS]
    key = (source, text)
    if key in _bad_seen:
        return
    if len(_bad_seen) >= MAX_REMEMBERED:
        _bad_seen.clear()
    _bad_seen[key] = None
    log.error("ignoring malformed %s %r: %s", source, text, error)
