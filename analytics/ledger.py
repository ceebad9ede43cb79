"""Bulk SQL for the metering batch: claim event ids, upsert rollups.

Hand-written SQL because the ORM has no "insert, skip duplicates, tell me which
rows went in" and no additive upsert. Both PostgreSQL and SQLite are supported;
everything runs inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection

from analytics.metering import DIMENSION_COLUMNS, METRIC_COLUMNS, Cells
from analytics.models import ProcessedEvent, Rollup

_SQLITE_CHUNK = 300  # rows per statement, under SQLite's bound-parameter limit

ROLLUP_TABLE = Rollup._meta.db_table
PROCESSED_TABLE = ProcessedEvent._meta.db_table
_KEY_COLUMNS = ("granularity", "bucket", *DIMENSION_COLUMNS)
_ALL_COLUMNS = (*_KEY_COLUMNS, *METRIC_COLUMNS)


def claim_event_ids(pairs: Sequence[tuple[int, uuid.UUID]]) -> set[uuid.UUID]:
    """Insert (day, event_id) pairs into the dedupe ledger and return the ids that
    were new. An id already there, committed by this or any other consumer, is
    not returned; on PostgreSQL a concurrent uncommitted insert of the same id
    makes this wait for that transaction, so two consumers never both win."""
    if not pairs:
        return set()
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                f"INSERT INTO {PROCESSED_TABLE} (day, event_id) "  # noqa: S608 - table name is ours
                "SELECT * FROM unnest(%s::integer[], %s::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
                [[d for d, _ in pairs], [i for _, i in pairs]],
            )
            return {row[0] for row in cur.fetchall()}
        fresh: set[uuid.UUID] = set()
        for start in range(0, len(pairs), _SQLITE_CHUNK):
            chunk = pairs[start : start + _SQLITE_CHUNK]
            values = ",".join(["(%s, %s)"] * len(chunk))
            params: list[object] = []
            for day, event_id in chunk:
                params += [day, event_id.hex]
            cur.execute(
                f"INSERT INTO {PROCESSED_TABLE} (day, event_id) VALUES {values} "  # noqa: S608
                "ON CONFLICT DO NOTHING RETURNING event_id",
                params,
            )
            fresh.update(uuid.UUID(row[0]) for row in cur.fetchall())
        return fresh


def upsert_rollups(granularity: str, cells: Cells) -> None:
    """Add each cell's metrics to its rollup row, creating the row if needed.
    Rows go in key order so that concurrent consumers lock them in the same
    order and cannot deadlock each other."""
    if not cells:
        return
    adapt = connection.ops.adapt_datetimefield_value  # SQLite wants the ORM's exact text form
    rows = [
        (granularity, adapt(datetime.fromtimestamp(key[0] / 1000, tz=UTC)), *key[1:], *vec)
        for key, vec in sorted(cells.items())
    ]
    updates = ", ".join(f"{c} = {ROLLUP_TABLE}.{c} + EXCLUDED.{c}" for c in METRIC_COLUMNS)
    conflict = ", ".join(_KEY_COLUMNS)
    columns = ", ".join(_ALL_COLUMNS)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            types = ["text", "timestamptz", "bigint", "text", "bigint", "text", "bigint", "bigint", "smallint"]
            types += ["bigint"] * 5 + ["double precision"] + ["bigint"] * (len(METRIC_COLUMNS) - 6)
            casts = ", ".join(f"%s::{t}[]" for t in types)
            columns_data = [list(col) for col in zip(*rows, strict=True)]
            # Integer metrics were summed as Python numbers; make the bigint arrays ints.
            for idx in range(len(_KEY_COLUMNS), len(_ALL_COLUMNS)):
                if types[idx] == "bigint":
                    columns_data[idx] = [int(v) for v in columns_data[idx]]
            cur.execute(
                f"INSERT INTO {ROLLUP_TABLE} ({columns}) SELECT * FROM unnest({casts}) "  # noqa: S608
                f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}",
                columns_data,
            )
            return
        placeholders = "(" + ", ".join(["%s"] * len(_ALL_COLUMNS)) + ")"
        per_chunk = max(1, 30000 // len(_ALL_COLUMNS))
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start : start + per_chunk]
            params = [v for row in chunk for v in row]
            cur.execute(
                f"INSERT INTO {ROLLUP_TABLE} ({columns}) VALUES {', '.join([placeholders] * len(chunk))} "  # noqa: S608
                f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}",
                params,
            )
