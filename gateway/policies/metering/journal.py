"""The metering journal and spill file formats, and how a dead worker's journal is adopted.

Both files are JSON lines written with msgspec (structs as arrays, so a line is short).

Journal (``journal-<worker>.jsonl``), one line per fact, appended with one unbuffered
``os.write`` each, so a SIGKILLed worker leaves every line it wrote in the page cache:

    ["H", node, worker, boot_ms]            first line: whose journal this is
    ["A", n, MeteredRequest]                request n was admitted (access phase passed);
                                            the record as known then: status 0, outcome unknown
    ["R", n, MeteredRequest]                request n was answered without being admitted
                                            (401, 429, 404 ...): its complete record
    ["B", [n, ...], MeteringBatch]          a sealed batch, covering requests n...; written
                                            before the batch is sent or spilled

Spill file (``spill-<worker>.jsonl``): one MeteringBatch per line, oldest first.

Adoption (``journal_adopt``): every B line becomes a spill line with its own id (it may
have reached Redis already: analytics deduplicates by batch id). Every A or R line that
no B line covers becomes part of a leftover batch: an A line as it was written (billed
with outcome unknown), an R line complete. Leftover batch ids derive from the journal's
header and the request numbers alone (``<node>:<worker>:<boot ms>:u<first n>``), so
adopting the same journal twice (a crash during adoption) yields the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import msgspec

from gateway import contract

log = logging.getLogger("gateway.metering")

# Leftover requests of one subscription go into batches of at most this many. Fixed, not
# GATEWAY_METERING_BATCH: a re-adoption under another setting must cut the same batches.
LEFTOVER_BATCH = 1_000


class Header(msgspec.Struct, array_like=True, frozen=True, tag="H"):
    node: str
    worker: int
    boot_ms: int

    @property
    def batch_prefix(self) -> str:
        return f"{self.node}:{self.worker}:{self.boot_ms}:"


class Admitted(msgspec.Struct, array_like=True, frozen=True, tag="A", gc=False):
    n: int
    request: contract.MeteredRequest


class Refused(msgspec.Struct, array_like=True, frozen=True, tag="R", gc=False):
    n: int
    request: contract.MeteredRequest


class Sealed(msgspec.Struct, array_like=True, frozen=True, tag="B", gc=False):
    numbers: list[int]
    batch: contract.MeteringBatch


JournalLine = Header | Admitted | Refused | Sealed

_encoder = msgspec.json.Encoder()
_journal_decoder = msgspec.json.Decoder(JournalLine)
_spill_decoder = msgspec.json.Decoder(contract.MeteringBatch)


def line(entry: JournalLine | contract.MeteringBatch) -> bytes:
    return _encoder.encode(entry) + b"\n"


def legacy_decode(raw: bytes) -> contract.MeteringBatch | None:
    """A line of a gateway from before batches (journal or spill file: one event as a
    JSON array in contract.METERING_FIELDS order), as the one-request batch
    ``legacy:<event id>`` that analytics also makes of the legacy stream's entries, so
    an upgrade neither loses what an older worker left on disk nor counts it twice."""
    try:
        values = msgspec.json.decode(raw)
        if not isinstance(values, list) or len(values) != len(contract.METERING_FIELDS):
            return None
        fields = {name: "" if v is None else str(v) for name, v in zip(contract.METERING_FIELDS, values, strict=True)}
        return contract.legacy_batch("", contract.MeteringEvent.from_fields(fields))
    except (msgspec.DecodeError, ValueError, KeyError):
        return None


def spill_decode(raw: bytes) -> contract.MeteringBatch | None:
    """A spill line, or None for a line that cannot be one (logged by the caller)."""
    try:
        return _spill_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return legacy_decode(raw)


def spill_count(path: Path) -> int:
    """Events waiting in a spill file."""
    total = 0
    try:
        with path.open("rb") as fh:
            for raw in fh:
                batch = spill_decode(raw)
                total += len(batch.requests) if batch is not None else 0
    except FileNotFoundError:
        return 0
    return total


def journal_batches(
    raw_lines: Iterable[bytes], fallback: Header
) -> tuple[list[contract.MeteringBatch], dict[str, int]]:
    """What a journal holds, as batches in order (sealed ones first, then leftovers), and
    counts by kind (sealed, unknown, refused, bad) for the log and metrics."""
    header = None
    sealed: list[contract.MeteringBatch] = []
    covered: set[int] = set()
    pending: dict[int, Admitted | Refused] = {}
    counts = {"sealed": 0, "unknown": 0, "refused": 0, "bad": 0}
    for raw in raw_lines:
        if not raw.strip():
            continue
        try:
            entry = _journal_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            legacy = legacy_decode(raw)
            if legacy is None:
                counts["bad"] += 1
            else:
                sealed.append(legacy)
                counts["sealed"] += 1
            continue
        if isinstance(entry, Header):
            header = header or entry
        elif isinstance(entry, Sealed):
            sealed.append(entry.batch)
            covered.update(entry.numbers)
            counts["sealed"] += len(entry.batch.requests)
        else:
            pending[entry.n] = entry
    prefix = (header or fallback).batch_prefix
    by_subscription: dict[int, list[tuple[int, contract.MeteredRequest]]] = {}
    for n in sorted(pending):
        if n in covered:
            continue
        entry = pending[n]
        counts["unknown" if isinstance(entry, Admitted) else "refused"] += 1
        by_subscription.setdefault(entry.request.subscription_id, []).append((n, entry.request))
    leftovers = []
    for items in by_subscription.values():
        for start in range(0, len(items), LEFTOVER_BATCH):
            chunk = items[start : start + LEFTOVER_BATCH]
            leftovers.append(
                contract.MeteringBatch(
                    v=contract.METERING_BATCH_VERSION,
                    id=f"{prefix}u{chunk[0][0]}",
                    requests=[request for _, request in chunk],
                )
            )
    leftovers.sort(key=lambda b: b.id)  # stable order: replays send the same file
    return sealed + leftovers, counts


def journal_adopt(journal: Path, spill: Path, fallback: Header) -> dict[str, int]:
    """Move a dead worker's journal into a spill file (appended: it is newer than what
    the spill file holds), then delete the journal. A crash in between adopts it again,
    into the same batch ids."""
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return {}
    batches, counts = journal_batches(raw.splitlines(), fallback)
    if batches:
        with spill.open("ab") as fh:
            fh.write(b"".join(line(b) for b in batches))
    journal.unlink(missing_ok=True)
    if batches or counts["bad"]:
        log.warning(
            "adopted metering journal %s: %d sealed, %d admitted with outcome unknown, %d refused, %d unreadable",
            journal, counts["sealed"], counts["unknown"], counts["refused"], counts["bad"],
        )
    return counts
