"""The gateway's Redis handle (gateway/redis_mux.py: execute, get, hgetall, evalsha with
every key in KEYS, pipeline) against real servers of every topology REDIS_URL names:
a unix socket with AUTH and SELECT, TLS with an ACL user, Sentinel across a failover, and
a 3-master Cluster, where MOVED and ASK are followed rather than taken for an outage."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway import contract
from gateway.redis_mux import ClusterMux, MuxRedis, new_handle
from tests.topology.servers import RedisClusterServers, SentinelServers, TlsRedisServer, UnixRedisServer
from tollway.redis_url import parse_redis_url

SCRIPT = """
local total = 0
for i = 1, #KEYS do total = total + redis.call('INCRBY', KEYS[i], ARGV[1]) end
return total
"""


async def exercise(handle: Any) -> None:
    """Every method of the handle, with keys in several slots (partition streams, tags)."""
    assert await handle.execute("SET", "tollway:v1:probe", "1") in (b"OK", "OK", True)
    assert await handle.get("tollway:v1:probe") == b"1"
    await handle.execute("HSET", "tollway:v1:h", "f", "v")
    assert await handle.hgetall("tollway:v1:h") == {b"f": b"v"}
    keys = ["{s7}:a", "{s7}:b"]
    await handle.execute("DEL", *keys)
    assert await handle.evalsha(SCRIPT, keys, [5]) == 10
    assert await handle.evalsha(SCRIPT, keys, [1]) == 12
    streams = [contract.metering_stream(p) for p in range(4)]
    replies = await handle.pipeline([("XADD", s, "*", contract.METERING_BATCH_FIELD, b"x") for s in streams])
    assert len(replies) == 4
    assert all(replies)
    lengths = await handle.pipeline([("XLEN", s) for s in streams])
    assert all(n >= 1 for n in lengths)


def test_unix_socket_with_auth_and_select() -> None:
    server = UnixRedisServer().start()
    try:
        target = parse_redis_url(server.url(db=3), env={})
        handle = new_handle(target, timeout=2.0)
        assert isinstance(handle, MuxRedis)

        async def run() -> None:
            await exercise(handle)
            await handle.close()

        asyncio.run(run())
        assert server.client(db=3).get("tollway:v1:probe") == b"1"  # SELECT 3 was sent
        assert server.client(db=0).get("tollway:v1:probe") is None
    finally:
        server.cleanup()


def test_tls_with_an_acl_user(tls_redis: TlsRedisServer) -> None:
    env = {"REDIS_TLS_CA_FILE": str(tls_redis.certs["ca"])}
    handle = new_handle(parse_redis_url(tls_redis.url, env=env), timeout=2.0)

    async def run() -> None:
        await exercise(handle)
        await handle.close()

    asyncio.run(run())
    assert tls_redis.client().get("tollway:v1:probe") == b"1"


def test_tls_with_a_wrong_ca_is_a_certificate_error(tls_redis: TlsRedisServer) -> None:
    env = {"REDIS_TLS_CA_FILE": str(tls_redis.certs["wrong_ca"])}
    handle = new_handle(parse_redis_url(tls_redis.url, env=env), timeout=2.0)

    async def run() -> None:
        with pytest.raises(RedisConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await handle.get("x")
        await handle.close()

    asyncio.run(run())


def test_sentinel_master_is_found_again_after_a_failover(sentinel: SentinelServers) -> None:
    handle = new_handle(parse_redis_url(sentinel.url, env={}), timeout=1.0)

    async def run() -> float:
        await exercise(handle)
        assert isinstance(handle, MuxRedis)
        assert (handle.host, handle.port) == sentinel.master()
        new_master = await asyncio.get_running_loop().run_in_executor(None, sentinel.failover)
        moved_at = time.monotonic()
        # Sentinel closes the old master's clients when it demotes it, and a READONLY reply
        # drops our connection too: the next connection asks Sentinel again.
        while True:
            try:
                await handle.execute("SET", "tollway:v1:after", "1")
                if (handle.host, handle.port) == new_master:
                    break
            except (redis.RedisError, OSError):
                pass
            assert time.monotonic() - moved_at < 5, "no write to the new master within 5 s"
            await asyncio.sleep(0.05)
        await handle.close()
        return time.monotonic() - moved_at

    asyncio.run(run())
    host, port = sentinel.master()
    assert redis.Redis(host=host, port=port).get("tollway:v1:after") == b"1"


def _node_id(port: int) -> str:
    return str(redis.Redis(port=port).execute_command("CLUSTER", "MYID").decode())


def _owner(cluster: RedisClusterServers, slot: int) -> int:
    for start, end, master, *_ in redis.Redis(port=cluster.ports[0]).execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return int(master[1])
    raise AssertionError(f"slot {slot} has no owner")


def test_cluster_follows_ask_and_moved(cluster: RedisClusterServers) -> None:
    handle = new_handle(parse_redis_url(cluster.url, env={}), timeout=2.0)
    assert isinstance(handle, ClusterMux)
    key = "{migrating}:key"
    slot = int(redis.Redis(port=cluster.ports[0]).execute_command("CLUSTER", "KEYSLOT", key))
    source = _owner(cluster, slot)
    target = next(p for p in cluster.ports if p != source)
    src, dst = redis.Redis(port=source), redis.Redis(port=target)

    async def run() -> None:
        await exercise(handle)
        await handle.execute("SET", key, "before")
        assert await handle.get(key) == b"before"  # the slot map now says: source
        # Migrate the slot: while it is half-way, the source answers ASK for the moved key.
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", _node_id(source))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _node_id(target))
        src.execute_command("MIGRATE", "127.0.0.1", target, key, 0, 5000)
        assert await handle.get(key) == b"before"  # ASK followed
        assert await handle.evalsha(SCRIPT, [key + ":n"], [1]) == 1  # a new key in a migrating slot: ASK too
        for port in cluster.ports:
            redis.Redis(port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", _node_id(target))
        assert await handle.get(key) == b"before"  # MOVED followed
        replies = await handle.pipeline([("SET", key, "after"), ("GET", key)])
        assert replies[1] == b"after"
        await handle.close()

    asyncio.run(run())
    assert dst.get(key) == b"after"
