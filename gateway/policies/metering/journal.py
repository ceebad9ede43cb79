"""The metering journal and spill file formats, and how a dead worker's journal is adopted.

Both files are JSON lines written with msgspec (structs as arrays, so a line is short).

Journal (``journal-<worker>.jsonl``), one line per fact, stored into a shared memory
mapping of the file (``Writer``): a store to a MAP_SHARED mapping goes straight to the
file's page cache, so a SIGKILLed worker leaves every line it stored there, as it would
with a ``write`` per line, without a system call per line:

    ["H", node, worker, boot_ms]            first line: whose journal this is
    ["A", n, MeteredRequest]                request n was admitted (access phase passed);
                                            the record as known then: status 0, outcome unknown
    ["R", n, MeteredRequest]                request n was answered without being admitted
                                            (401, 429, 404 ...): its complete record
    ["B", [n, ...], MeteringBatch]          a sealed batch, covering requests n...; written
                                            before the batch is sent or spilled

The file is preallocated (``posix_fallocate``, so a store can never meet a full disk,
which a mapping would answer with SIGBUS) and reads as NUL bytes past the last line.
Reading stops at the first NUL byte, and a line is stored all but its first byte first,
then that byte (never NUL: every line is a JSON array, "["), so a line cut short by a
SIGKILL mid-store reads as the end of the journal, never as a line. A journal is
emptied by zeroing its first byte first, then the rest, before anything is stored again
from offset 0; and it is compacted into a new file (written whole, then renamed over the
old one). So no byte of an earlier generation can follow a live line. Journals of
gateways from before the mapping (appended with ``os.write``, no NUL bytes) read the same
way, as do their torn last lines (unreadable, counted "bad").

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
import mmap
import os
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

# A journal file's preallocated size: room for about 40,000 admissions. A full one is
# compacted (into a new file of at least this size) on the spot.
JOURNAL_CAPACITY = 8 * 1024 * 1024
_ZEROS = bytes(64 * 1024)


class Writer:
    """A journal file mapped into memory (MAP_SHARED), written by stores.

    Made with ``data`` already in it: the new file is written whole under a temporary
    name, preallocated to ``capacity`` (at least twice ``data``) and renamed over
    ``path``, so at every moment the file at ``path`` is either the journal before or the
    one after. Raises OSError when the file cannot be made or preallocated."""

    def __init__(self, path: Path, data: bytes = b"", capacity: int | None = None) -> None:
        capacity = max(JOURNAL_CAPACITY if capacity is None else capacity, 2 * len(data))
        capacity += -capacity % mmap.PAGESIZE
        # This process's own temporary name: another one opening the same name with
        # O_TRUNC while this one has it mapped would turn the next store into a SIGBUS.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, capacity)  # blocks reserved: no store can hit ENOSPC (SIGBUS)
                self.map = mmap.mmap(fd, capacity)  # MAP_SHARED, read and write
            finally:
                os.close(fd)
            try:
                self.map[: len(data)] = data
                os.replace(tmp, path)
            except BaseException:
                self.map.close()
                raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.path = path
        self.capacity = capacity
        self.size = len(data)

    def append(self, data: bytes) -> bool:
        """Store one line (or lines) after the last; False, storing nothing, without room."""
        start = self.size
        end = start + len(data)
        if end > self.capacity:
            return False
        mm = self.map
        mm[start + 1 : end] = data[1:]
        mm[start] = data[0]  # last, one byte: until then the journal ends at `start`
        self.size = end
        return True

    def clear(self) -> None:
        """Empty the journal: its first byte first (from then on it reads as empty), then
        the rest, so that what is stored from offset 0 again is never followed by old lines."""
        size, mm = self.size, self.map
        if not size:
            return
        mm[0] = 0
        for start in range(1, size, len(_ZEROS)):
            end = min(size, start + len(_ZEROS))
            mm[start:end] = _ZEROS[: end - start]
        self.size = 0

    def close(self) -> None:
        self.map.close()


def journal_content(raw: bytes) -> bytes:
    """What a journal file holds: everything before its first NUL byte."""
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]

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
    batches, counts = journal_batches(journal_content(raw).splitlines(), fallback)
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
