"""Pure aggregation of metered requests into rollup deltas. No database, no Redis.

Requests are folded into minute cells first (one dictionary update per request,
the only per-request work); the rollup rows of each granularity, the
application-less traffic rows and the billable counts are derived from them.

Minute rollup rows carry the status class but neither the endpoint nor the exact
status code (they are "" and 0): the breakdowns read hours and days, and per-minute
rows by endpoint and code would multiply the busiest table's rows for nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import add

from analytics.models import ENDPOINT_MAX_CHARS, LATENCY_BUCKETS_MS, LATENCY_FIELDS
from gateway.contract import OUTCOME_UNKNOWN, MeteredRequest

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WIDTH_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}

# Metric vector layout; the histogram follows.
REQUESTS, ADMITTED, ERRORS, BYTES_IN, BYTES_OUT, LATENCY_SUM = range(6)
HIST0 = 6
VECTOR_LEN = HIST0 + len(LATENCY_FIELDS)
METRIC_COLUMNS: tuple[str, ...] = (
    "requests", "admitted", "errors", "bytes_in", "bytes_out", "latency_sum_ms", *LATENCY_FIELDS,
)
# Rollup's dimensions in CellKey order (after the bucket), then status_class, derived from status.
DIMENSION_COLUMNS: tuple[str, ...] = (
    "api_id", "version", "application_id", "key_prefix", "plan_id", "subscription_id", "endpoint", "status",
    "status_class",
)
# TrafficRollup's, in TrafficKey order, then status_class.
TRAFFIC_DIMENSION_COLUMNS: tuple[str, ...] = (
    "partition", "api_id", "version", "plan_id", "endpoint", "status", "status_class",
)

# A minute cell, as requests are folded:
# (bucket_start_ms, api_id, version, application_id, key_prefix, plan_id, subscription_id, endpoint, status)
CellKey = tuple[int, int, str, int, str, int, int, str, int]
# A Rollup row's key: the bucket, then DIMENSION_COLUMNS' values (status_class last).
RowKey = tuple[int, int, str, int, str, int, int, str, int, int]
Cells = dict[RowKey, list[float]]
# A TrafficRollup row's key: the bucket, then TRAFFIC_DIMENSION_COLUMNS' values.
TrafficKey = tuple[int, int, int, str, int, str, int, int]
TrafficCells = dict[TrafficKey, list[float]]

# Column widths of the string dimensions (analytics/models.py). A longer value is cut
# here, once per cell, rather than failing the batch's transaction forever.
_VERSION_CHARS = 40
_KEY_PREFIX_CHARS = 16


def latency_bucket(latency_ms: float) -> int:
    """Index of the first bucket whose upper bound is >= latency (last: open-ended)."""
    return bisect_left(LATENCY_BUCKETS_MS, latency_ms)


def status_class(status: int) -> int:
    return status // 100 if 100 <= status <= 599 else 0


def _fold(
    cells: dict[CellKey, list[float]], keyfunc: Callable[[CellKey], tuple[object, ...]]
) -> dict[tuple[object, ...], list[float]]:
    out: dict[tuple[object, ...], list[float]] = {}
    get = out.get
    for key, vec in cells.items():
        coarse = keyfunc(key)
        acc = get(coarse)
        out[coarse] = vec[:] if acc is None else list(map(add, acc, vec))
    return out


@dataclass
class BatchAggregate:
    minute: dict[CellKey, list[float]] = field(default_factory=dict)
    # (application_id, key_prefix) -> latest admitted request's ts, for the keys' last use.
    last_used: dict[tuple[int, str], int] = field(default_factory=dict)
    events: int = 0

    def cells(self, granularity: str, *, min_minute_ts: int | None = None) -> Cells:
        """Rollup rows for granularity "m", "h" or "d", string dimensions cut to their
        columns' widths. Minute cells older than ``min_minute_ts`` are left out:
        their retention has already passed. Minute rows have no endpoint or status
        code, only the status class (see the module docstring)."""
        width = WIDTH_MS[granularity]
        source = self.minute
        if granularity == "m":
            if min_minute_ts is not None:
                source = {k: v for k, v in self.minute.items() if k[0] >= min_minute_ts}

            def minute(k: CellKey) -> RowKey:
                return (k[0], k[1], k[2][:_VERSION_CHARS], k[3], k[4][:_KEY_PREFIX_CHARS], k[5], k[6], "", 0,
                        status_class(k[8]))

            return _fold(source, minute)  # type: ignore[return-value]

        def coarse(k: CellKey) -> RowKey:
            return (k[0] - k[0] % width, k[1], k[2][:_VERSION_CHARS], k[3], k[4][:_KEY_PREFIX_CHARS], k[5], k[6],
                    k[7][:ENDPOINT_MAX_CHARS], k[8], status_class(k[8]))

        return _fold(source, coarse)  # type: ignore[return-value]

    def traffic_cells(self, granularity: str, *, partition: int, min_minute_ts: int | None = None) -> TrafficCells:
        """Cells without the per-application dimensions, for TrafficRollup, stamped
        with the partition whose consumer writes them."""
        width = WIDTH_MS[granularity]
        source = self.minute
        if granularity == "m" and min_minute_ts is not None:
            source = {k: v for k, v in self.minute.items() if k[0] >= min_minute_ts}

        def coarse(k: CellKey) -> TrafficKey:
            return (k[0] - k[0] % width, partition, k[1], k[2][:_VERSION_CHARS], k[5], k[7][:ENDPOINT_MAX_CHARS], k[8],
                    status_class(k[8]))

        return _fold(source, coarse)  # type: ignore[return-value]

    def billable(self) -> dict[tuple[int, int, int], int]:
        """(subscription_id, plan_id, epoch day) -> admitted requests, for late usage of closed months."""
        out: dict[tuple[int, int, int], int] = {}
        for key, vec in self.minute.items():
            if key[6] and vec[ADMITTED]:
                day_key = (key[6], key[5], key[0] // DAY_MS)
                out[day_key] = out.get(day_key, 0) + int(vec[ADMITTED])
        return out


def aggregate(requests: Iterable[MeteredRequest], into: BatchAggregate | None = None) -> BatchAggregate:
    """Fold requests into minute cells. Admitted means what the gateway bills: decision
    ``allowed``, or an outcome the gateway never learnt (admitted, then its worker died)."""
    agg = into if into is not None else BatchAggregate()
    minute = agg.minute
    last_used = agg.last_used
    buckets = LATENCY_BUCKETS_MS
    n = 0
    for r in requests:
        n += 1
        ts = r.ts
        status = r.status
        key = (ts - ts % MINUTE_MS, r.api_id, r.version, r.application_id, r.key_prefix, r.plan_id,
               r.subscription_id, r.endpoint, status)
        vec = minute.get(key)
        if vec is None:
            vec = minute[key] = [0] * VECTOR_LEN
        vec[REQUESTS] += 1
        if r.decision == "allowed" or r.outcome == OUTCOME_UNKNOWN:
            vec[ADMITTED] += 1
            if r.key_prefix and r.application_id:
                pair = (r.application_id, r.key_prefix)
                if last_used.get(pair, 0) < ts:
                    last_used[pair] = ts
        if status >= 400:
            vec[ERRORS] += 1
        vec[BYTES_IN] += r.bytes_in
        vec[BYTES_OUT] += r.bytes_out
        latency = r.latency_ms
        vec[LATENCY_SUM] += latency
        vec[HIST0 + bisect_left(buckets, latency)] += 1
    agg.events += n
    return agg
