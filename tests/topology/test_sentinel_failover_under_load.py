"""Sentinel (1 primary, 1 replica, 3 sentinels): SENTINEL FAILOVER while a gateway node
serves traffic. The gateway finds the new master by itself and serves again within 5 s,
nothing it admitted is lost from metering (the analytics consumer, on the same Sentinel
URL, counts every admitted request into the rollups), and a revocation published after
the failover reaches every worker within 1 s."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, SECRET, Echo, Publisher, fire, grant
from tests.topology.servers import SentinelServers
from tollway.redis_url import parse_redis_url, sync_client

pytestmark = pytest.mark.slow


SUBSCRIPTION = 9001


def statuses(url: str, key: str, n: int = 16, *, tally: list[int] | None = None) -> set[int]:
    # Fresh connections, so that with SO_REUSEPORT the requests land on every worker.
    got = [status for status, _, _ in fire([("GET", url, {"X-API-Key": key})] * n)]
    if tally is not None:
        tally.extend(got)
    return set(got)


def metered_admitted() -> int:
    from django.db.models import Sum

    from analytics.models import Granularity, Rollup

    total = Rollup.objects.filter(granularity=Granularity.MINUTE, subscription_id=SUBSCRIPTION).aggregate(
        n=Sum("admitted"))["n"]
    return int(total or 0)


def test_failover_under_load(sentinel: SentinelServers, echo_upstream: Echo, gateways, settings,
                             transactional_db) -> None:
    # The publisher is the portal's client for this URL: Sentinel's master, checked again as it moves.
    client = sync_client(parse_redis_url(sentinel.url, env={}), socket_timeout=2, socket_connect_timeout=2)
    publish = Publisher(client)
    publish.route(echo_upstream.url)
    publish.application(ALICE_APP, {ECHO_API_ID: grant(SUBSCRIPTION)}, name="alice-app")
    key = publish.key(ALICE_APP, key_id=1)
    gateway = gateways(sentinel.url, "sentinel", GATEWAY_KEY_HASH_SECRET=SECRET)
    url = f"{gateway.url}/echo/v1/anything"
    tally: list[int] = []  # every status the gateway answered, outside the load threads
    assert statuses(url, key, tally=tally) == {200}

    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=5) as http:
            while not stop.is_set():
                try:
                    seen.append((time.monotonic(), http.get(url, headers={"X-API-Key": key}).status_code))
                except httpx.HTTPError:
                    seen.append((time.monotonic(), 0))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        before = sentinel.master()
        after = sentinel.failover()
        assert after != before
        failed_over_at = time.monotonic()
        while statuses(url, key, tally=tally) != {200}:
            assert time.monotonic() - failed_over_at < 5, "the gateway did not recover within 5 s of the failover"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert any(status == 200 for _, status in seen)
    # Once recovered, it stays recovered.
    recovered = [status for at, status in seen if at > failed_over_at + 5]
    assert set(recovered) <= {200}

    # A revocation published after the failover (to the new master) arrives within 1 s.
    publish.revoke(key, ALICE_APP)
    revoked_at = time.monotonic()
    while statuses(url, key, tally=tally) != {401}:
        assert time.monotonic() - revoked_at <= 1.0, "the revocation took more than 1 s after the failover"
        time.sleep(0.02)
    host, port = after
    import redis

    assert redis.Redis(host=host, port=port).info("replication")["role"] == "master"
    client.close()

    # Nothing admitted is lost from metering. Every 200 was admitted; a request the client
    # gave up on (status 0) may or may not have been, so the load's client timeout is long
    # enough that there should be none.
    admitted = tally.count(200) + sum(status == 200 for _, status in seen)
    assert 0 not in {status for _, status in seen}, "a request got no answer: its admission is unknown"
    # The gateway flushes (or spills, then replays once Redis answers; on Sentinel a batch
    # counts as sent only once a replica has it: GATEWAY_METERING_WAIT_REPLICAS); the analytics
    # consumer on the Sentinel URL drains the partitions into the rollups.
    from analytics import conf
    from analytics.ingest import consumer

    settings.REDIS_URL = sentinel.url
    metering = conf.metering_redis_client()
    deadline = time.monotonic() + 20
    try:
        while metered_admitted() < admitted and time.monotonic() < deadline:
            consumer.consume(client=metering, consumer="topology", budget_s=5, block_ms=100)
    finally:
        metering.close()
    assert metered_admitted() == admitted, (
        f"the gateway answered {admitted} requests 200, the rollups count {metered_admitted()} admitted")


def test_celery_broker_over_sentinel(sentinel: SentinelServers) -> None:
    """REDIS_URL=redis+sentinel://… gives Celery kombu's sentinel:// transport with
    master_name (portal/settings.py): a message goes through the master Sentinel names."""
    import kombu

    from tollway.redis_url import celery_broker

    broker = celery_broker(parse_redis_url(sentinel.url, env={}))
    assert broker.url.startswith("sentinel://")
    with kombu.Connection(broker.url, transport_options=broker.transport_options) as connection:
        queue = connection.SimpleQueue("tollway-topology-test")
        queue.put({"hello": "sentinel"})
        message = queue.get(timeout=5)
        assert message.payload == {"hello": "sentinel"}
        message.ack()
        queue.close()
    host, port = sentinel.master()
    import redis

    assert redis.Redis(host=host, port=port).exists("_kombu.binding.tollway-topology-test")
