"""Pure aggregation of metering events into rollup rows. No database, no Redis.

Events are folded into minute cells first and the hour and day cells are
derived from those, so the per-event work is one dictionary update.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from analytics.models import LATENCY_BUCKETS_MS, LATENCY_FIELDS
from gateway.contract import MeteringEvent

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# Metric vector layout; the histogram follows.
REQUESTS, ADMITTED, ERRORS, BYTES_IN, BYTES_OUT, LATENCY_SUM = range(6)
HIST0 = 6
VECTOR_LEN = HIST0 + len(LATENCY_FIELDS)
METRIC_COLUMNS: tuple[str, ...] = (
    "requests", "admitted", "errors", "bytes_in", "bytes_out", "latency_sum_ms", *LATENCY_FIELDS,
)
DIMENSION_COLUMNS: tuple[str, ...] = (
    "api_id", "version", "application_id", "key_prefix", "plan_id", "subscription_id", "status_class",
)
TRAFFIC_DIMENSION_COLUMNS: tuple[str, ...] = ("api_id", "version", "plan_id", "status_class")

# (bucket_start_ms, api_id, version, application_id, key_prefix, plan_id, subscription_id, status_class)
CellKey = tuple[int, int, str, int, str, int, int, int]
Cells = dict[CellKey, list[float]]
# (bucket_start_ms, api_id, version, plan_id, status_class): TrafficRollup's dimensions
TrafficKey = tuple[int, int, str, int, int]
TrafficCells = dict[TrafficKey, list[float]]


def latency_bucket(latency_ms: float) -> int:
    """Index of the first bucket whose upper bound is >= latency (last: open-ended)."""
    return bisect_left(LATENCY_BUCKETS_MS, latency_ms)


@dataclass
class BatchAggregate:
    minute: Cells = field(default_factory=dict)
    # (subscription_id, plan_id, epoch day) -> admitted requests, for the adjustment path.
    billable: dict[tuple[int, int, int], int] = field(default_factory=dict)
    events: int = 0

    def cells(self, granularity: str, *, min_minute_ts: int | None = None) -> Cells:
        """Cells for granularity "m", "h" or "d". Minute cells older than
        ``min_minute_ts`` are left out: their retention has already passed."""
        if granularity == "m":
            if min_minute_ts is None:
                return self.minute
            return {k: v for k, v in self.minute.items() if k[0] >= min_minute_ts}
        width = HOUR_MS if granularity == "h" else DAY_MS
        out: Cells = {}
        for key, vec in self.minute.items():
            coarse = (key[0] - key[0] % width, *key[1:])
            acc = out.get(coarse)
            if acc is None:
                out[coarse] = list(vec)
            else:
                for i, value in enumerate(vec):
                    acc[i] += value
        return out


    def traffic_cells(self, granularity: str, *, min_minute_ts: int | None = None) -> TrafficCells:
        """Cells without the per-application dimensions, for TrafficRollup."""
        width = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}[granularity]
        out: TrafficCells = {}
        for key, vec in self.minute.items():
            if min_minute_ts is not None and granularity == "m" and key[0] < min_minute_ts:
                continue
            coarse = (key[0] - key[0] % width, key[1], key[2], key[5], key[7])
            acc = out.get(coarse)
            if acc is None:
                out[coarse] = list(vec)
            else:
                for i, value in enumerate(vec):
                    acc[i] += value
        return out


def aggregate(events: Iterable[MeteringEvent]) -> BatchAggregate:
    agg = BatchAggregate()
    minute = agg.minute
    billable = agg.billable
    buckets = LATENCY_BUCKETS_MS
    n = 0
    for e in events:
        n += 1
        status = e.status
        sc = status // 100 if 100 <= status <= 599 else 0
        key = (
            e.ts - e.ts % MINUTE_MS,
            e.api_id or 0,
            e.version,
            e.application_id or 0,
            e.key_prefix,
            e.plan_id or 0,
            e.subscription_id or 0,
            sc,
        )
        vec = minute.get(key)
        if vec is None:
            vec = minute[key] = [0] * VECTOR_LEN
        admitted = e.decision == "allowed"
        vec[REQUESTS] += 1
        if admitted:
            vec[ADMITTED] += 1
            if e.subscription_id:
                bkey = (e.subscription_id, e.plan_id or 0, e.ts // DAY_MS)
                billable[bkey] = billable.get(bkey, 0) + 1
        if status >= 400:
            vec[ERRORS] += 1
        vec[BYTES_IN] += e.bytes_in
        vec[BYTES_OUT] += e.bytes_out
        vec[LATENCY_SUM] += e.latency_ms
        vec[HIST0 + bisect_left(buckets, e.latency_ms)] += 1
    agg.events = n
    return agg

