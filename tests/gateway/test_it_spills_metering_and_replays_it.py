"""Metering: one record per request, rejected ones included, sent in batches to the
partitioned streams defined by the contract. With Redis down the batches spill to a local
file and are replayed, each with its own id, when it is back, with nothing lost; past the
spill bound the drops are counted and exported."""

from __future__ import annotations

import json
import time

import httpx
import msgspec

from gateway import contract
from gateway.policies.metering import journal
from tests.gateway.conftest import restart_redis
from tests.gateway.metering import stream_entries, wait_for_requests


def metric(gateway, name: str) -> float:
    text = httpx.get(f"{gateway.url}/_tollway/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_every_request_is_metered_rejected_ones_included(start_gateway, stage):
    gateway = start_gateway(redis_url=stage.redis.url)
    alice, charlie = {"X-API-Key": stage.world.alice_key}, {"X-API-Key": stage.world.charlie_key}
    assert httpx.post(f"{gateway.url}/echo/v1/a", headers=alice, content=b"12345").status_code == 200
    assert httpx.get(f"{gateway.url}/echo/v1/b", headers=charlie).status_code == 401
    assert httpx.get(f"{gateway.url}/nope/v1/", headers=alice).status_code == 404

    requests = wait_for_requests(stage.client, 3)
    assert len(requests) == 3
    by_decision = {r.decision: r for r in requests}
    allowed, unauthenticated, unknown = (by_decision[d] for d in ("allowed", "unauthenticated", "not_found"))
    assert allowed.status == 200
    assert allowed.outcome == ""
    assert allowed.api == "echo"
    assert allowed.version == "v1"
    assert allowed.application_id == 101
    assert allowed.key_prefix == contract.key_display_prefix(stage.world.alice_key)
    assert allowed.subscription_id == 7001
    assert allowed.plan_id == 70010
    assert allowed.method == "POST"
    assert allowed.bytes_in == 5
    assert allowed.bytes_out > 0
    assert allowed.latency_ms > 0
    assert allowed.endpoint == "/a"
    assert unauthenticated.status == 401
    assert unauthenticated.subscription_id == 0
    assert unknown.api == ""
    assert unknown.endpoint == ""
    # Each batch went to its subscription's partition, as one stream entry.
    entries = stream_entries(stage.client)
    assert {(e.partition, r.subscription_id) for e in entries for r in e.batch.requests} == {
        (contract.metering_partition(7001, 4), 7001), (0, 0)}
    assert len({e.batch.id for e in entries}) == len(entries)


def spilled_batches(path) -> list[contract.MeteringBatch]:
    return [msgspec.json.decode(line, type=contract.MeteringBatch) for line in path.read_bytes().splitlines()]


def test_events_spill_while_redis_is_down_and_are_replayed(start_gateway, stage, tmp_path):
    gateway = start_gateway(redis_url=stage.redis.url)
    headers = {"X-API-Key": stage.world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v2/before", headers=headers).status_code == 200
    assert len(wait_for_requests(stage.client, 1)) == 1

    stage.redis.kill()
    statuses = [httpx.get(f"{gateway.url}/echo/v2/during", headers=headers).status_code for _ in range(30)]
    assert 200 in statuses  # fail_open: served under the local limit, and metered either way
    deadline = time.monotonic() + 5
    while metric(gateway, "tollway_gateway_metering_spilled_total") < 30 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(gateway, "tollway_gateway_metering_spilled_total") == 30
    spill_file = tmp_path / "spill" / "spill-0.jsonl"
    spilled = spilled_batches(spill_file)  # one line per batch, each with its id
    assert sum(len(b.requests) for b in spilled) == 30

    restart_redis(stage.redis)
    requests = wait_for_requests(stage.client, 31)
    assert len(requests) == 31
    assert sorted(r.status for r in requests if r.endpoint == "/during") == sorted(statuses)
    entries = stream_entries(stage.client)
    # Replayed as they were spilled: same ids, same contents, each once.
    assert [e.batch for e in entries[1:]] == spilled
    assert len({e.batch.id for e in entries}) == len(entries)
    assert metric(gateway, "tollway_gateway_metering_dropped_total") == 0
    deadline = time.monotonic() + 5
    while spill_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not spill_file.exists()


def test_past_the_bound_drops_are_counted_and_exported(start_gateway, stage):
    # One request per batch, so the bound falls between batches (a batch is kept or dropped whole).
    gateway = start_gateway(redis_url=stage.redis.url, GATEWAY_SPILL_MAX_EVENTS="5", GATEWAY_METERING_BATCH="1")
    headers = {"X-API-Key": stage.world.charlie_key}  # rejected: metered without touching the limiter
    stage.redis.kill()
    for _ in range(20):
        assert httpx.get(f"{gateway.url}/echo/v2/", headers=headers).status_code in (401, 503)
    deadline = time.monotonic() + 5
    while metric(gateway, "tollway_gateway_metering_dropped_total") < 15 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(gateway, "tollway_gateway_metering_dropped_total") == 15
    assert metric(gateway, "tollway_gateway_metering_spilled_total") == 5

    restart_redis(stage.redis)
    assert len(wait_for_requests(stage.client, 5)) == 5


def orphan_request(i: int) -> contract.MeteredRequest:
    return contract.MeteredRequest(
        ts=1700000000000 + i, api_id=1, api="echo", version="v1", application_id=101, key_prefix="tw_abcdefgh",
        subscription_id=7001, plan_id=70010, method="GET", status=200, decision="allowed", latency_ms=1.5,
        bytes_in=0, bytes_out=10, endpoint="/x",
    )


def test_spill_files_and_journals_of_departed_workers_are_replayed(start_gateway, stage, tmp_path):
    # A previous run had 4 workers; this one has 1. Slots 2 and 3 left a spill file, slot 3
    # a journal too: a batch sealed, one admitted request in flight, one answered and unsealed.
    spill = tmp_path / "spill"
    spill.mkdir()
    sealed = contract.MeteringBatch(v=1, id="old-node:2:1700000000000:7", requests=[orphan_request(0)])
    (spill / "spill-2.jsonl").write_bytes(journal.line(sealed))
    in_journal = contract.MeteringBatch(v=1, id="old-node:3:1700000000000:1", requests=[orphan_request(1)])
    in_flight = msgspec.structs.replace(orphan_request(2), status=0, outcome=contract.OUTCOME_UNKNOWN, latency_ms=0.0,
                                        bytes_out=0)
    lines = [
        journal.Header("old-node", 3, 1700000000000),
        journal.Admitted(1, msgspec.structs.replace(in_journal.requests[0], status=0, outcome="unknown")),
        journal.Sealed([1], in_journal),
        journal.Admitted(2, in_flight),
    ]
    (spill / "journal-3.jsonl").write_bytes(b"".join(journal.line(x) for x in lines))
    # A gateway from before batches left one event per line; each becomes the batch "legacy:<event id>".
    event = ["orphan" + "0" * 26, 1700000000003, 1, "echo", "v1", 101, "tw_abcdefgh", 7001, 70010,
             "GET", 200, "allowed", 1.5, 0, 10]
    (spill / "spill-1.jsonl").write_text(json.dumps(event) + "\n")

    start_gateway(redis_url=stage.redis.url)

    requests = wait_for_requests(stage.client, 4)
    batches = {e.batch.id: e.batch for e in stream_entries(stage.client)}
    assert sorted(batches) == sorted([sealed.id, in_journal.id, "old-node:3:1700000000000:u2",
                                      "legacy:" + "orphan" + "0" * 26])
    assert batches[in_journal.id] == in_journal
    assert batches["old-node:3:1700000000000:u2"].requests == [in_flight]
    assert sorted(r.ts for r in requests) == [1700000000000 + i for i in range(4)]
    deadline = time.monotonic() + 5
    while any(spill.glob("*-[123].jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(spill.glob("*-[123].jsonl"))
