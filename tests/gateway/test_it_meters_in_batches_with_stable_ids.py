"""Metering batches: named by node, worker slot, boot and sequence; one stream entry each,
in the partition of their subscription; a dead worker's journal adopted twice gives the
same batches (so a crash during adoption bills nothing twice); endpoint labels bounded."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from gateway import contract
from gateway.config import load_config
from gateway.exceptions import ConfigError
from gateway.policies.metering import journal
from gateway.policies.metering import policy as metering_policy
from gateway.policies.metering.endpoint import MAX_LABEL_CHARS, OTHER, EndpointLabels, first_segment
from gateway.policies.metering.schema import MeteringSettings
from gateway.redis_mux import MuxRedis
from gateway.state import RedisHealth
from gateway.types import RequestContext
from tests.gateway.conftest import ECHO_API_ID, grant
from tests.gateway.metering import stream_entries, unique_batches, wait_for_requests


def request(n: int, *, subscription_id: int = 7, status: int = 200, outcome: str = "") -> contract.MeteredRequest:
    return contract.MeteredRequest(
        ts=1_700_000_000_000 + n, api_id=1, api="echo", version="v1", application_id=101, key_prefix="tw_x",
        subscription_id=subscription_id, plan_id=70, method="GET", status=status,
        decision="allowed" if outcome or status < 400 else "rate_limited", latency_ms=0.0 if outcome else 1.0,
        bytes_in=0, bytes_out=0, endpoint="/x", outcome=outcome,
    )


def test_a_journal_adopted_twice_gives_the_same_batches(tmp_path):
    header = journal.Header("node-a", 2, 1_700_000_000_000)
    sealed = contract.MeteringBatch(v=1, id="node-a:2:1700000000000:1", requests=[request(1), request(2)])
    unknown = request(3, outcome=contract.OUTCOME_UNKNOWN, status=0)
    other_unknown = request(5, subscription_id=8, outcome=contract.OUTCOME_UNKNOWN, status=0)
    refused = request(4, status=429)
    lines = [
        header,
        journal.Admitted(1, request(1, outcome=contract.OUTCOME_UNKNOWN, status=0)),
        journal.Admitted(2, request(2, outcome=contract.OUTCOME_UNKNOWN, status=0)),
        journal.Admitted(3, unknown),
        journal.Refused(4, refused),
        journal.Sealed([1, 2], sealed),
        journal.Admitted(5, other_unknown),
    ]
    text = b"".join(journal.line(x) for x in lines) + b'["A",6,[17000'  # a torn last line
    first, second = tmp_path / "journal-2.jsonl", tmp_path / "copy" / "journal-2.jsonl"
    second.parent.mkdir()
    first.write_bytes(text)
    second.write_bytes(text)
    fallback = journal.Header("other", 2, 1)

    counts = journal.journal_adopt(first, tmp_path / "spill-2.jsonl", fallback)
    journal.journal_adopt(second, tmp_path / "copy" / "spill-2.jsonl", fallback)

    assert counts == {"sealed": 2, "unknown": 2, "refused": 1, "bad": 1}
    assert not first.exists()
    adopted = [journal.spill_decode(raw) for raw in (tmp_path / "spill-2.jsonl").read_bytes().splitlines()]
    again = [journal.spill_decode(raw) for raw in (tmp_path / "copy" / "spill-2.jsonl").read_bytes().splitlines()]
    assert adopted == again
    assert adopted == [
        sealed,  # as sealed: same id, so a copy that already reached Redis is recognised
        contract.MeteringBatch(v=1, id="node-a:2:1700000000000:u3", requests=[unknown, refused]),
        contract.MeteringBatch(v=1, id="node-a:2:1700000000000:u5", requests=[other_unknown]),
    ]
    # Every adopted batch is valid for analytics' checked decoder.
    for batch in adopted:
        assert batch is not None
        assert contract.decode_batch(contract.encode_batch(batch)) == batch


def test_batches_are_named_by_node_and_partitioned_by_subscription(start_gateway, publish, world, redis_client):
    publish.application(104, {ECHO_API_ID: grant(1004)})
    dave = publish.key(104, key_id=4)
    gateway = start_gateway(GATEWAY_NODE_ID="edge-7", METERING_PARTITIONS="2", GATEWAY_METERING_BATCH="3")
    for key, count in ((world.alice_key, 7), (dave, 2)):
        for i in range(count):
            assert httpx.get(f"{gateway.url}/echo/v1/items/{i}", headers={"X-API-Key": key}).status_code == 200

    requests = wait_for_requests(redis_client, 9, partitions=2)
    assert len(requests) == 9
    entries = stream_entries(redis_client, partitions=2)
    assert not redis_client.exists(contract.metering_stream(2), contract.METERING_STREAM)
    by_partition = {e.partition: {r.subscription_id for r in e.batch.requests} for e in entries}
    assert by_partition == {1001 % 2: {1001}, 1004 % 2: {1004}}
    assert all(len(e.batch.requests) <= 3 for e in entries)
    ids = [e.batch.id for e in entries]
    assert len(set(ids)) == len(ids)
    for batch_id in ids:
        node, worker, boot, seq = batch_id.split(":")
        assert (node, worker) == ("edge-7", "0")
        assert boot.isdigit()
        assert seq.isdigit()
    assert {r.endpoint for r in requests} == {"/items"}


@pytest.mark.parametrize(("name", "value"), [("GATEWAY_NODE_ID", "a:b"), ("GATEWAY_NODE_ID", "x" * 65),
                                             ("METERING_PARTITIONS", "0")])
def test_a_bad_node_id_or_partition_count_is_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({"GATEWAY_KEY_HASH_SECRET": "s", name: value})


def test_node_id_defaults_to_the_host_name_and_partitions_to_the_contract():
    config = load_config({"GATEWAY_KEY_HASH_SECRET": "s"})
    assert config.node_id
    assert ":" not in config.node_id
    assert config.metering_partitions == contract.DEFAULT_METERING_PARTITIONS


def test_endpoint_labels_are_bounded_per_version():
    assert first_segment("/items/42") == "/items"
    assert first_segment("/") == "/"
    assert first_segment("/" + "a" * 100) == "/" + "a" * (MAX_LABEL_CHARS - 1)
    labels = EndpointLabels(max_per_version=2)
    assert labels.label(1, "/nothing-here", 404) == OTHER  # a 404 teaches nothing
    assert labels.label(1, "/items/1", 0) == OTHER  # outcome unknown: not learned either
    assert labels.label(1, "/items/1", 200) == "/items"
    assert labels.label(1, "/items/2", 0) == "/items"  # known now, whatever the outcome
    assert labels.label(1, "/users", 201) == "/users"
    assert labels.label(1, "/orders", 200) == OTHER  # past the cap
    assert labels.label(2, "/orders", 200) == "/orders"  # another version has its own


def fake_context(n: int, *, subscription_id: int = 7001) -> RequestContext:
    """A request as the pipeline hands it to metering: admitted on echo v1 by alice."""
    ctx = RequestContext(request=SimpleNamespace(method="GET"), request_id=f"r{n}", event_id=f"e{n}")  # type: ignore[arg-type]
    ctx.route = contract.RouteRecord(api_id=1, api_slug="echo", version="v1", version_id=101, state="published",
                                     upstreams=(contract.Upstream(url="http://127.0.0.1:9"),))
    ctx.api_slug, ctx.version, ctx.upstream_path = "echo", "v1", f"/items/{n}"
    ctx.grant = grant(subscription_id)
    return ctx


def test_a_compacted_journal_holds_exactly_what_is_open(gw_redis, redis_client, tmp_path, monkeypatch):
    # Compact at every flush, then "kill" the worker (drop the Meter without stopping it)
    # and adopt its journal: what comes back is the requests still in flight, nothing sent.
    monkeypatch.setattr(metering_policy, "JOURNAL_COMPACT_BYTES", 1)
    settings = MeteringSettings(spill_dir=str(tmp_path), batch=4)

    async def run() -> None:
        redis = MuxRedis(gw_redis.url, timeout=1.0)
        meter = metering_policy.Meter(redis, RedisHealth(), settings, worker_index=0, workers=1, node_id="n1")
        contexts = [fake_context(i, subscription_id=7001 + i % 3) for i in range(10)]
        for i, ctx in enumerate(contexts):
            meter.admit(ctx)
            if i == 0:  # the first answer teaches the label "/items"; later admissions use it
                ctx.status = 200
                meter.record(ctx)
        for ctx in contexts[1:7]:  # answered; 7..9 still in flight
            ctx.status = 200
            meter.record(ctx)
        await meter.flush()
        assert meter.open_requests.keys() == {8, 9, 10}
        assert not meter.open_batches
        await redis.close()

    asyncio.run(run())
    sent = unique_batches(stream_entries(redis_client))
    assert sum(len(b.requests) for b in sent) == 7
    counts = journal.journal_adopt(tmp_path / "journal-0.jsonl", tmp_path / "spill-0.jsonl",
                                   journal.Header("n1", 0, 0))
    assert counts == {"sealed": 0, "unknown": 3, "refused": 0, "bad": 0}
    adopted = [journal.spill_decode(raw) for raw in (tmp_path / "spill-0.jsonl").read_bytes().splitlines()]
    assert sorted(r.endpoint for b in adopted if b for r in b.requests) == ["/items"] * 3
    assert all(r.outcome == contract.OUTCOME_UNKNOWN for b in adopted if b for r in b.requests)
    assert not {b.id for b in adopted if b} & {b.id for b in sent}


def test_a_status_outside_http_is_metered_as_502(tmp_path):
    # An upstream may send 600-999 (aiohttp relays it); analytics would refuse the whole batch.
    meter = metering_policy.Meter(MuxRedis("redis://127.0.0.1:1", timeout=0.1), RedisHealth(),
                                  MeteringSettings(spill_dir=str(tmp_path)), worker_index=0, workers=1)
    ctx = fake_context(1)
    ctx.status = 777
    meter.record(ctx)
    [recorded] = meter.buffers[contract.metering_partition(7001, meter.partitions)]
    assert recorded.status == 502
    batch = contract.MeteringBatch(v=1, id="n:0:1:1", requests=[recorded])
    assert contract.decode_batch(contract.encode_batch(batch)) == batch
