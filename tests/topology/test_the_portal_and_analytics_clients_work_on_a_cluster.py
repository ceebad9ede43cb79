"""The portal's Django cache and analytics' Redis client, given a cluster's REDIS_URL:
multi-key cache calls do not cross slots, and each metering partition stream (its own
hash tag) is read with its own XREADGROUP."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import contract
from tests.topology.servers import RedisClusterServers

pytestmark = pytest.mark.slow


def test_the_django_cache_on_a_cluster(cluster: RedisClusterServers) -> None:
    from portal.core.cache import RedisCache

    cache = RedisCache(cluster.url, {"KEY_PREFIX": "tollway-portal"})
    keys = [f"throttle:{i}" for i in range(20)]  # spread over many slots
    cache.set_many({k: i for i, k in enumerate(keys)}, timeout=60)
    assert cache.get_many(keys) == {k: i for i, k in enumerate(keys)}
    cache.set("login:alice", 1, timeout=60)
    assert cache.incr("login:alice") == 2
    cache.delete_many(keys)
    assert cache.get_many(keys) == {}
    assert cache.get("login:alice") == 2


def test_analytics_reads_every_partition_stream_on_a_cluster(cluster: RedisClusterServers, settings: Any) -> None:
    from analytics import conf
    from analytics.reports.reconcile import gateway_day_counter_key, read_gateway_day_counts

    settings.REDIS_URL = cluster.url
    client = conf.redis_client()
    streams = [contract.metering_stream(p) for p in range(contract.DEFAULT_METERING_PARTITIONS)]
    slots = {int(client.cluster_keyslot(s)) for s in streams}
    assert len(slots) == len(streams)  # a tag each: they do not share a slot
    for stream in streams:
        client.delete(stream)
        client.xgroup_create(stream, "analytics", id="0", mkstream=True)
        client.xadd(stream, {contract.METERING_BATCH_FIELD: stream})
    read = [client.xreadgroup("analytics", "c1", {stream: ">"}, count=10) for stream in streams]
    assert [entries[0][1][0][1][contract.METERING_BATCH_FIELD] for entries in read] == streams

    # The gateway's day counters of many subscriptions, read in one call (per slot underneath).
    import datetime as dt

    day = dt.date(2026, 11, 30)
    for subscription_id in (1, 2, 3):
        client.set(gateway_day_counter_key(subscription_id, day), subscription_id * 10)
    assert read_gateway_day_counts(client, [1, 2, 3, 4], day) == {1: 10, 2: 20, 3: 30, 4: None}


def test_a_cluster_that_does_not_answer_defers_publishing(settings: Any, db: Any) -> None:
    """No node answers: redis-py raises RedisClusterException, which is not a RedisError.
    The after-commit publish must still only defer (the outbox keeps the row), never 500."""
    from portal.gateway_state import publish
    from portal.gateway_state.models import PublishOutbox
    from tests.services import free_port

    settings.REDIS_URL = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    publish.redis_client.cache_clear()
    publish._last_failure = 0.0
    PublishOutbox.objects.create(kind="key", ref="0" * 64)

    publish.outbox_flush_quietly()

    assert PublishOutbox.objects.filter(kind="key", ref="0" * 64).exists()
    publish.redis_client.cache_clear()
