"""The metering journal is a preallocated file mapped into memory (journal.Writer): what a
worker killed at any moment leaves in it is read back exactly, never a torn line and never
a line of an earlier generation; journals written by older gateways (one os.write per
line) are still adopted; the complete record of an admitted request is the one a full
build would give."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from gateway import contract
from gateway.policies.metering import journal
from gateway.policies.metering import policy as metering_policy
from gateway.policies.metering.endpoint import OTHER
from gateway.policies.metering.schema import MeteringSettings
from gateway.redis_mux import MuxRedis
from gateway.state import RedisHealth
from gateway.types import RequestContext
from tests.gateway.conftest import grant

ROOT = Path(__file__).resolve().parents[2]
HEADER = journal.Header("node-t", 0, 1_700_000_000_000)


def request(n: int, *, status: int = 0, endpoint: str = "/x") -> contract.MeteredRequest:
    return contract.MeteredRequest(
        ts=1_700_000_000_000 + n, api_id=1, api="echo", version="v1", application_id=101, key_prefix="tw_x",
        subscription_id=7, plan_id=70, method="GET", status=status, decision="allowed",
        latency_ms=0.0, bytes_in=0, bytes_out=0, endpoint=endpoint,
        outcome=contract.OUTCOME_UNKNOWN if not status else "",
    )


def admitted_line(n: int) -> bytes:
    return journal.line(journal.Admitted(n, request(n)))


def adopt(path: Path) -> tuple[list[contract.MeteredRequest], dict[str, int]]:
    spill = path.with_name("spill-0.jsonl")
    spill.unlink(missing_ok=True)
    counts = journal.journal_adopt(path, spill, HEADER)
    batches = [journal.spill_decode(raw) for raw in spill.read_bytes().splitlines()] if spill.exists() else []
    return sorted((r for b in batches if b for r in b.requests), key=lambda r: r.ts), counts


def assert_empty(path: Path) -> None:
    requests, counts = adopt(path)
    assert requests == []
    assert not any(counts.values()), counts


class Killed(Exception):
    pass


class DiesMidStore:
    """Stands in for a Writer's mapping: passes stores to the real one until store number
    `after`, of which it applies only a random part of the bytes, in a random order (as a
    memcpy interrupted by SIGKILL may leave them), then "dies"."""

    def __init__(self, mm: object, after: int, rng: random.Random) -> None:
        self.mm, self.after, self.rng, self.stores = mm, after, rng, 0

    def __setitem__(self, key: int | slice, value: int | bytes) -> None:
        self.stores += 1
        if self.stores < self.after:
            self.mm[key] = value  # type: ignore[index]
            return
        if isinstance(key, int):
            if self.rng.random() < 0.5:
                self.mm[key] = value  # type: ignore[index]
        else:
            assert isinstance(value, bytes)
            start = key.start or 0
            positions = list(range(len(value)))
            for i in self.rng.sample(positions, self.rng.randrange(len(positions) + 1)):
                self.mm[start + i] = value[i]  # type: ignore[index]
        raise Killed

    def __getitem__(self, key: int | slice) -> object:
        return self.mm[key]  # type: ignore[index]


def test_a_line_cut_short_by_a_kill_reads_as_the_end_of_the_journal(tmp_path):
    rng = random.Random(16)
    for attempt in range(200):
        path = tmp_path / f"journal-{attempt}.jsonl"
        writer = journal.Writer(path, journal.line(HEADER))
        lines = rng.randrange(0, 5)
        for n in range(1, lines + 1):
            assert writer.append(admitted_line(n))
        # The next line is cut short somewhere within its stores.
        real = writer.map
        writer.map = DiesMidStore(real, rng.randrange(1, 3), rng)  # type: ignore[assignment]
        with pytest.raises(Killed):
            writer.append(admitted_line(lines + 1))
        real.close()
        requests, counts = adopt(path)
        assert counts.get("bad", 0) == 0, attempt
        assert [r.ts for r in requests] in ([1_700_000_000_000 + n for n in range(1, k + 1)] for k in
                                            (lines, lines + 1)), attempt


def test_an_emptied_journal_never_reads_back_an_earlier_generation(tmp_path):
    path = tmp_path / "journal-0.jsonl"
    writer = journal.Writer(path)
    assert writer.append(journal.line(HEADER) + b"".join(admitted_line(n) for n in range(1, 200)))
    writer.clear()
    assert_empty(path)  # nothing open: nothing to adopt
    # A new generation, shorter than the old one: the old lines after it stay dead.
    writer = journal.Writer(path)
    assert writer.append(journal.line(HEADER) + b"".join(admitted_line(n) for n in range(1, 200)))
    writer.clear()
    assert writer.append(journal.line(HEADER) + admitted_line(500))
    requests, counts = adopt(path)
    assert [r.ts for r in requests] == [1_700_000_000_500]
    assert counts["bad"] == 0


def test_a_kill_while_the_journal_is_emptied_leaves_it_empty(tmp_path):
    rng = random.Random(7)
    for attempt in range(20):
        path = tmp_path / f"journal-{attempt}.jsonl"
        writer = journal.Writer(path)
        assert writer.append(journal.line(HEADER) + b"".join(admitted_line(n) for n in range(1, 4000)))
        assert writer.size > 3 * 64 * 1024  # zeroed in several stores after the first byte
        real = writer.map
        writer.map = DiesMidStore(real, rng.randrange(2, 5), rng)  # type: ignore[assignment]
        with pytest.raises(Killed):
            writer.clear()
        real.close()
        assert_empty(path)


KILL_LOOP = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path
    from gateway import contract
    from gateway.policies.metering import journal
    path = Path(sys.argv[1])
    writer = journal.Writer(path, journal.line(journal.Header("node-t", 0, 1)), capacity=32 * 1024 * 1024)
    n = 0
    while True:
        n += 1
        request = contract.MeteredRequest(n, 1, "echo", "v1", 101, "tw_x" * (n % 50), 7, 70, "GET", 0, "allowed",
                                          0.0, 0, 0, "/x", contract.OUTCOME_UNKNOWN)
        if not writer.append(journal.line(journal.Admitted(n, request))):
            break  # full: a kill now finds it whole (a kill during clear() is the test above)
        if n == 1:
            print("ready", flush=True)  # a line is in: a kill from now on must leave one at least
    time.sleep(60)
""")


def test_a_sigkilled_writer_leaves_only_whole_lines_in_order(tmp_path):
    # A real process storing lines as fast as it can, killed at random moments.
    rng = random.Random(3)
    for attempt in range(8):
        path = tmp_path / f"journal-{attempt}.jsonl"
        proc = subprocess.Popen([sys.executable, "-c", KILL_LOOP, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.05 + rng.random() * 0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        requests, counts = adopt(path)
        assert counts["bad"] == 0
        assert requests, "the writer stored nothing before the kill"
        assert [r.ts for r in requests] == list(range(requests[0].ts, requests[0].ts + len(requests)))


def test_a_journal_written_by_an_older_gateway_is_adopted_at_start(tmp_path):
    # One os.write per line, no NUL bytes, a torn last line: what an older worker leaves.
    old = journal.Header("old-node", 0, 1_600_000_000_000)
    path = tmp_path / "journal-0.jsonl"
    refused = request(2, status=429)
    path.write_bytes(b"".join(journal.line(x) for x in (old, journal.Admitted(1, request(1)),
                                                       journal.Refused(2, refused))) + b'["A",3,[16')
    stale = tmp_path / "journal-0.jsonl.4242.tmp"  # a compaction a kill cut short, before its rename
    stale.write_bytes(b"\0" * 4096)
    meter = metering_policy.Meter(MuxRedis("redis://127.0.0.1:1", timeout=0.1), RedisHealth(),
                                  MeteringSettings(spill_dir=str(tmp_path)), worker_index=0, workers=1)
    batches = [journal.spill_decode(raw) for raw in (tmp_path / "spill-0.jsonl").read_bytes().splitlines()]
    assert [(b.id, b.requests) for b in batches if b] == [("old-node:0:1600000000000:u1", [request(1), refused])]
    # The slot's journal is now a fresh mapped file: preallocated, reading as empty.
    assert path.stat().st_size == journal.JOURNAL_CAPACITY
    assert journal.journal_content(path.read_bytes()) == b""
    assert meter.journal_bytes == 0
    assert not stale.exists()


def fake_context(n: int, path: str, *, subscription_id: int = 7001) -> RequestContext:
    ctx = RequestContext(request=SimpleNamespace(method="POST"), request_id=f"r{n}", event_id=f"e{n}")  # type: ignore[arg-type]
    ctx.route = contract.RouteRecord(api_id=1, api_slug="echo", version="v1", version_id=101, state="published",
                                     upstreams=(contract.Upstream(url="http://127.0.0.1:9"),))
    ctx.api_slug, ctx.version, ctx.upstream_path = "echo", "v1", path
    ctx.grant = grant(subscription_id)
    ctx.key_prefix = "tw_\x00odd"  # a NUL in a field is escaped in the journal, never a raw NUL
    return ctx


def test_a_full_journal_is_compacted_at_once_and_keeps_every_open_line(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "JOURNAL_CAPACITY", 8192)
    meter = metering_policy.Meter(MuxRedis("redis://127.0.0.1:1", timeout=0.1), RedisHealth(),
                                  MeteringSettings(spill_dir=str(tmp_path)), worker_index=0, workers=1)
    contexts = [fake_context(i, f"/items/{i}") for i in range(300)]  # ~60 KB of A lines, no flush
    for ctx in contexts:
        meter.admit(ctx)
    for ctx in contexts[:100]:
        ctx.status = 200
        meter.record(ctx)
    assert meter._journal is not None, "journaling stayed on"
    assert (tmp_path / "journal-0.jsonl").stat().st_size > 8192
    requests, counts = adopt(tmp_path / "journal-0.jsonl")
    assert counts == {"sealed": 0, "unknown": 300, "refused": 0, "bad": 0}
    assert {r.key_prefix for r in requests} == {"tw_\x00odd"}


@pytest.mark.parametrize("paths_and_statuses", [
    [("/items/1", 200), ("/items/2", 201), ("/orders", 404), ("/orders", 200), ("/orders/9", 500), ("/", 302)],
    [("/a", 404), ("/a", 404), ("/a", 200), ("/a", 404), ("/b", 777), ("/b", 200)],
])
def test_an_answered_record_is_the_full_record(tmp_path, paths_and_statuses):
    # The final record is the admission record with the response's fields replaced; it
    # must equal what a full build gives, endpoint labels learned or not included.
    meter = metering_policy.Meter(MuxRedis("redis://127.0.0.1:1", timeout=0.1), RedisHealth(),
                                  MeteringSettings(spill_dir=str(tmp_path)), worker_index=0, workers=1)
    twin = metering_policy.Meter(MuxRedis("redis://127.0.0.1:1", timeout=0.1), RedisHealth(),
                                 MeteringSettings(spill_dir=str(tmp_path / "twin")), worker_index=0, workers=1)
    for i, (path, status) in enumerate(paths_and_statuses):
        ctx = fake_context(i, path)
        meter.admit(ctx)
        admitted = meter.in_flight[ctx.event_id][1]
        ctx.status, ctx.bytes_in, ctx.bytes_out, ctx.decision = status, 3 * i, 5 * i, "allowed"
        expected = twin._record(ctx)  # the full build, with its own labels learning the same way
        meter.record(ctx)
        [got] = [r for buffer in meter.buffers for r in buffer if r.ts == ctx.ts_ms and r.bytes_in == 3 * i]
        assert msgspec.structs.replace(got, latency_ms=0.0) == msgspec.structs.replace(expected, latency_ms=0.0)
        assert admitted.endpoint in (got.endpoint, OTHER)
