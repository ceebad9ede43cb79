"""Reading the metering streams the way analytics does, straight from Redis: every
partition's entries decoded with contract.decode_batch."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from gateway import contract


@dataclass(frozen=True)
class Entry:
    partition: int
    stream_id: str
    batch: contract.MeteringBatch


def stream_entries(client: redis.Redis, partitions: int = contract.DEFAULT_METERING_PARTITIONS) -> list[Entry]:
    entries = []
    for p in range(partitions):
        for stream_id, fields in client.xrange(contract.metering_stream(p)):
            assert set(fields) == {contract.METERING_BATCH_FIELD.encode()}, fields
            batch = contract.decode_batch(fields[contract.METERING_BATCH_FIELD.encode()])
            entries.append(Entry(p, stream_id.decode(), batch))
    return entries


def unique_batches(entries: list[Entry]) -> list[contract.MeteringBatch]:
    """One copy of each batch id (analytics' dedupe), in stream order per partition."""
    seen: dict[str, contract.MeteringBatch] = {}
    for entry in entries:
        seen.setdefault(entry.batch.id, entry.batch)
    return list(seen.values())


def stream_requests(client: redis.Redis, partitions: int = contract.DEFAULT_METERING_PARTITIONS
                    ) -> list[contract.MeteredRequest]:
    """Every metered request, deduplicated by batch id, oldest first."""
    requests = [r for b in unique_batches(stream_entries(client, partitions)) for r in b.requests]
    return sorted(requests, key=lambda r: r.ts)


def wait_for_requests(client: redis.Redis, count: int, timeout: float = 10.0,
                      partitions: int = contract.DEFAULT_METERING_PARTITIONS) -> list[contract.MeteredRequest]:
    deadline = time.monotonic() + timeout
    requests = stream_requests(client, partitions)
    while len(requests) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        requests = stream_requests(client, partitions)
    return requests
