"""The upstream pool is bounded per upstream (GATEWAY_UPSTREAM_MAX_CONNECTIONS) and idle
upstream connections close after GATEWAY_UPSTREAM_IDLE_S, counted at a real upstream."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import fire, wait_until


class CountingUpstream:
    """A keep-alive HTTP/1.1 server that answers every request after a short delay and
    counts the TCP connections it holds open, and the most it ever held."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.open = 0
        self.most = 0
        self.accepted = 0
        self.served = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.accepted += 1
        self.most = max(self.most, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                await asyncio.sleep(self.delay)
                self.served += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def counting_upstream() -> Iterator[CountingUpstream]:
    upstream = CountingUpstream()
    yield upstream
    upstream.close()


def test_many_clients_share_a_bounded_pool_and_idle_connections_close(
    start_gateway, publish, world, counting_upstream
):
    publish.route(counting_upstream.url, connect_timeout_s=10.0)  # queued requests may wait for a connection
    gateway = start_gateway(GATEWAY_UPSTREAM_MAX_CONNECTIONS="4", GATEWAY_UPSTREAM_IDLE_S="1")
    headers = {"X-API-Key": world.alice_key}

    results = fire([("GET", f"{gateway.url}/echo/v1/x", headers)] * 100)  # 100 client connections at once

    assert [status for status, _, _ in results] == [200] * 100
    assert counting_upstream.served == 100
    assert counting_upstream.most <= 4
    assert counting_upstream.accepted <= 4
    assert counting_upstream.open >= 1  # kept alive for the next request...
    idle_from = time.monotonic()
    assert wait_until(lambda: counting_upstream.open == 0, timeout=5)  # ...but not for long
    assert time.monotonic() - idle_from < 3.5
