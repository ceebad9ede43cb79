"""Metering: one event per request, rejected ones included, in the stream defined by the
contract. With Redis down the events spill to a local file and are replayed when it is
back, with nothing lost; past the spill bound the drops are counted and exported."""

from __future__ import annotations

import json
import time

import httpx

from gateway import contract
from tests.gateway.conftest import restart_redis


def stream_events(client) -> list[contract.MeteringEvent]:
    return [contract.MeteringEvent.from_fields(fields) for _, fields in client.xrange(contract.METERING_STREAM)]


def wait_for_events(client, count: int, timeout: float = 10.0) -> list[contract.MeteringEvent]:
    deadline = time.monotonic() + timeout
    events = stream_events(client)
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        events = stream_events(client)
    return events


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

    events = wait_for_events(stage.client, 3)
    assert len(events) == 3
    allowed, unauthenticated, unknown = events
    assert allowed.decision == "allowed"
    assert allowed.status == 200
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
    assert unauthenticated.decision == "unauthenticated"
    assert unauthenticated.status == 401
    assert unknown.decision == "not_found"
    assert unknown.api == ""
    assert len({e.id for e in events}) == 3


def test_events_spill_while_redis_is_down_and_are_replayed(start_gateway, stage, tmp_path):
    gateway = start_gateway(redis_url=stage.redis.url)
    headers = {"X-API-Key": stage.world.alice_key}
    assert httpx.get(f"{gateway.url}/echo/v2/before", headers=headers).status_code == 200
    assert len(wait_for_events(stage.client, 1)) == 1

    stage.redis.kill()
    statuses = [httpx.get(f"{gateway.url}/echo/v2/during", headers=headers).status_code for _ in range(30)]
    assert 200 in statuses  # fail_open: served under the local limit, and metered either way
    deadline = time.monotonic() + 5
    while metric(gateway, "tollway_gateway_metering_spilled_total") < 30 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(gateway, "tollway_gateway_metering_spilled_total") == 30
    assert (tmp_path / "spill" / "spill-0.jsonl").exists()

    restart_redis(stage.redis)
    events = wait_for_events(stage.client, 31)
    assert len(events) == 31
    assert len({e.id for e in events}) == 31
    assert sorted(e.status for e in events[1:]) == sorted(statuses)
    assert metric(gateway, "tollway_gateway_metering_dropped_total") == 0
    deadline = time.monotonic() + 5
    while (tmp_path / "spill" / "spill-0.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (tmp_path / "spill" / "spill-0.jsonl").exists()


def test_past_the_bound_drops_are_counted_and_exported(start_gateway, stage):
    gateway = start_gateway(redis_url=stage.redis.url, GATEWAY_SPILL_MAX_EVENTS="5")
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
    assert len(wait_for_events(stage.client, 5)) == 5


def test_spill_files_of_departed_workers_are_replayed(start_gateway, stage, tmp_path):
    # A previous run had 4 workers; this one has 1. Worker slot 3's spill file is an orphan.
    spill = tmp_path / "spill"
    spill.mkdir()
    lines = []
    for i in range(3):
        event = [f"orphan{i:028d}", 1700000000000 + i, 1, "echo", "v1", 101, "tw_abcdefgh", 7001, 70010,
                 "GET", 200, "allowed", 1.5, 0, 10]
        lines.append(json.dumps(event))
    (spill / "spill-3.jsonl").write_text("\n".join(lines) + "\n")

    start_gateway(redis_url=stage.redis.url)

    events = wait_for_events(stage.client, 3)
    assert sorted(e.id for e in events) == [f"orphan{i:028d}" for i in range(3)]
    deadline = time.monotonic() + 5
    while (spill / "spill-3.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (spill / "spill-3.jsonl").exists()
