"""Fixtures for the topology tests: real Redis Cluster, Sentinel and TLS servers
(tests/topology/servers.py), gateway processes pointed at them, and the portal in this
process publishing to them. Everything on 127.0.0.1, torn down after each module."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import Echo, GatewayProcess, start_echo
from tests.topology.servers import RedisClusterServers, SentinelServers, TlsRedisServer

logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers().start()
    yield servers
    servers.cleanup()


@pytest.fixture
def sentinel() -> Iterator[SentinelServers]:
    servers = SentinelServers().start()
    yield servers
    servers.cleanup()


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedisServer]:
    server = TlsRedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[Echo]:
    upstream = start_echo()
    yield upstream
    upstream.proc.terminate()
    upstream.proc.wait(timeout=10)


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Any]:
    """start(redis_url, name, **env): a gateway process with its own snapshot, spill and
    metrics folders (a node of the fleet), the portal's key hash secret."""
    started: list[GatewayProcess] = []

    def start(
        redis_url: str, name: str = "node", *, workers: int = 2, wait: str = "ready", **env: str
    ) -> GatewayProcess:
        node_dir = tmp_path / f"{name}-{len(started)}"
        node_dir.mkdir()
        settings = {
            "GATEWAY_KEY_HASH_SECRET": os.environ["TOLLWAY_KEY_HASH_SECRET"],
            "GATEWAY_SNAPSHOT_INTERVAL_S": "0.2",
            **env,
        }
        gateway = GatewayProcess(redis_url=redis_url, tmp=node_dir, workers=workers, env=settings)
        started.append(gateway)
        return gateway.start(wait=wait)

    yield start
    for gateway in started:
        with contextlib.suppress(Exception):
            gateway.stop()
