"""Bulk SQL for the metering batch: claim event ids, upsert rollups.

Hand-written SQL because the ORM has no "insert, skip duplicates, tell me which
rows went in" and no additive upsert. Both PostgreSQL and SQLite are supported;
everything runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.backends.utils import CursorWrapper

from analytics.ingest.metering import (
    DIMENSION_COLUMNS,
    METRIC_COLUMNS,
    TRAFFIC_DIMENSION_COLUMNS,
    Cells,
    TrafficCells,
)
from analytics.models import ProcessedEvent, Rollup, TrafficRollup

_SQLITE_CHUNK = 300  # rows per statement, under SQLite's bound-parameter limit

PROCESSED_TABLE = ProcessedEvent._meta.db_table


@dataclass(frozen=True)
class RollupTable:
    name: str
    stage: str
    dimensions: tuple[str, ...]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return ("granularity", "bucket", *self.dimensions)

    @property
    def all_columns(self) -> tuple[str, ...]:
        return (*self.key_columns, *METRIC_COLUMNS)


ROLLUPS = RollupTable(Rollup._meta.db_table, "tw_rollup_stage", DIMENSION_COLUMNS)
TRAFFIC = RollupTable(TrafficRollup._meta.db_table, "tw_traffic_stage", TRAFFIC_DIMENSION_COLUMNS)


_EVENT_STAGE = "tw_event_stage"


def _pg_stage(cur: CursorWrapper, table: str, like: str, columns: str) -> None:
    # A per-session temporary table, emptied at every commit. Rows arrive by COPY,
    # which psycopg formats in C; binding big arrays instead costs seconds per batch.
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} AS SELECT {columns} FROM {like} WITH NO DATA")  # noqa: S608
    cur.execute(f"TRUNCATE {table}")


def claim_event_ids(pairs: Sequence[tuple[int, str]]) -> set[str]:
    """Insert (day, event id as 32 lowercase hex digits) pairs into the dedupe
    ledger and return the ids that were new. An id already there, committed by
    this or any other consumer, is not returned; on PostgreSQL a concurrent
    uncommitted insert of the same id makes this wait for that transaction, so
    two consumers never both win."""
    if not pairs:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            _pg_stage(cur, _EVENT_STAGE, PROCESSED_TABLE, "day, event_id")
            with cur.cursor.copy(f"COPY {_EVENT_STAGE} (day, event_id) FROM STDIN") as copy:
                for pair in pairs:
                    copy.write_row(pair)
            cur.execute(
                f"INSERT INTO {PROCESSED_TABLE} (day, event_id) SELECT day, event_id FROM {_EVENT_STAGE} "  # noqa: S608
                "ON CONFLICT DO NOTHING RETURNING replace(event_id::text, '-', '')"
            )
            return {row[0] for row in cur.fetchall()}
    with connection.cursor() as cur:
        fresh: set[str] = set()
        for start in range(0, len(pairs), _SQLITE_CHUNK):
            chunk = pairs[start : start + _SQLITE_CHUNK]
            values = ",".join(["(%s, %s)"] * len(chunk))
            params: list[int | str] = [v for pair in chunk for v in pair]
            cur.execute(
                f"INSERT INTO {PROCESSED_TABLE} (day, event_id) VALUES {values} "  # noqa: S608
                "ON CONFLICT DO NOTHING RETURNING event_id",
                params,
            )
            fresh.update(row[0] for row in cur.fetchall())
        return fresh


def upsert_rollups(
    cells_by_granularity: Mapping[str, Cells | TrafficCells], table: RollupTable = ROLLUPS
) -> None:
    """Add each cell's metrics to its rollup row, creating the row if needed, in
    one statement for all granularities. Rows go in key order so that concurrent
    consumers lock them in the same order and cannot deadlock each other."""
    adapt = connection.ops.adapt_datetimefield_value  # SQLite wants the ORM's exact text form
    rows = [
        (granularity, adapt(datetime.fromtimestamp(int(key[0]) / 1000, tz=UTC)), *key[1:], *vec)
        for granularity, cells in sorted(cells_by_granularity.items())
        for key, vec in sorted(cells.items())
    ]
    if not rows:
        return
    updates = ", ".join(f"{c} = {table.name}.{c} + EXCLUDED.{c}" for c in METRIC_COLUMNS)
    conflict = ", ".join(table.key_columns)
    columns = ", ".join(table.all_columns)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            _pg_stage(cur, table.stage, table.name, columns)
            with cur.cursor.copy(f"COPY {table.stage} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.stage} "  # noqa: S608
                f"ORDER BY {conflict} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
            )
        return
    with connection.cursor() as cur:
        placeholders = "(" + ", ".join(["%s"] * len(table.all_columns)) + ")"
        per_chunk = max(1, 30000 // len(table.all_columns))
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            params = [v for row in chunk for v in row]
            cur.execute(
                f"INSERT INTO {table.name} ({columns}) VALUES {', '.join([placeholders] * len(chunk))} "  # noqa: S608
                f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}",
                params,
            )
