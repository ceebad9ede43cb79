"""gateway/upstream.py, the proxy's HTTP/1.1 client, against scripted upstreams on real
loopback sockets: pooled connections the upstream closed, HEAD, 1xx, chunked bodies,
Connection: close and HTTP/1.0, malformed answers, the sweep's timeouts and the pool's
limit and queue. (The gateway-level behaviour is covered by the other tests/gateway
files; a malformed answer through the gateway is tested at the end.)"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from multidict import CIMultiDict

from gateway.upstream import (
    TICK_S,
    BadResponse,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    Origin,
    SendFailed,
    Timeouts,
    UpstreamClient,
    UpstreamTimeout,
)
from tests.gateway.conftest import RawUpstream

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
TIMEOUTS = Timeouts(2.0, 5.0, 10.0)

Answer = Callable[[int, bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class Scripted:
    """An upstream on 127.0.0.1 whose ``answer(n, head, reader, writer)`` handles the n-th
    request (from 0, over all connections); it returns False to close the connection."""

    def __init__(self, answer: Answer, rcvbuf: int = 0) -> None:
        self.answer = answer
        self.rcvbuf = rcvbuf  # small: the client's writes stall soon when nothing is read
        self.accepted = 0
        self.open = 0
        self.most = 0
        self.requests: list[bytes] = []

    async def start(self) -> Origin:
        sock = socket.socket()
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)  # inherited by accepted sockets
        sock.bind(("127.0.0.1", 0))
        self.server = await asyncio.start_server(self._client, sock=sock)
        port = self.server.sockets[0].getsockname()[1]
        return Origin("http", "127.0.0.1", port, f"127.0.0.1:{port}")

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = len(self.requests)
                self.requests.append(head)
                if not await self.answer(n, head, reader, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    def close(self) -> None:
        self.server.close()


def run(answer: Answer, body: Callable[[UpstreamClient, Origin, Scripted], Awaitable[None]],
        max_connections: int = 10, idle_s: float = 30.0, rcvbuf: int = 0) -> Scripted:
    async def main() -> Scripted:
        upstream = Scripted(answer, rcvbuf)
        origin = await upstream.start()
        client = UpstreamClient(max_connections, idle_s)
        try:
            await asyncio.wait_for(body(client, origin, upstream), 20)
        finally:
            await client.close()
            upstream.close()
        return upstream

    return asyncio.run(main())


async def get(client: UpstreamClient, origin: Origin, path: str = "/", method: str = "GET",
              timeouts: Timeouts = TIMEOUTS) -> tuple[int, CIMultiDict[str], bytes]:
    response = await client.request(origin, method, path, CIMultiDict(), None, timeouts)
    try:
        body = await response.read()
        return response.status, response.headers, body
    finally:
        response.release()


async def ok(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


def test_keep_alive_reuses_one_connection_and_sends_only_the_headers_given():
    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        for _ in range(3):
            assert await get(client, origin, "/a?b=c") == (200, CIMultiDict({"Content-Length": "2"}), b"ok")

    upstream = run(ok, body)
    assert upstream.accepted == 1
    lines = upstream.requests[0].split(b"\r\n")
    assert lines[0] == b"GET /a?b=c HTTP/1.1"
    assert [line.split(b":")[0] for line in lines[1:] if line] == [b"Host"]  # no User-Agent, Accept, ...


def test_a_pooled_connection_the_upstream_closed_while_idle_is_not_an_error():
    """The upstream closes each connection after its first answer, without saying so
    (no Connection: close): the next request must not fail."""

    async def once(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK)
        return False

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        for _ in range(3):
            assert (await get(client, origin))[0] == 200
            await asyncio.sleep(0.05)  # the close arrives while the connection sits idle

    assert run(once, body).accepted == 3


def test_a_pooled_connection_closed_as_the_request_goes_is_retried_once_on_a_fresh_one():
    """The race the idle check cannot see: the upstream takes the next request on a
    kept-alive connection and closes without a byte of answer. A GET is sent again on a
    fresh connection; a POST (not idempotent), with a streamed body or none, is not."""

    async def close_second(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if n in (1, 4, 6):
            return False  # the 2nd, 5th and 7th requests: closed unanswered
        if head.startswith(b"POST"):
            await reader.readuntil(b"0\r\n\r\n")
        writer.write(OK)
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        assert (await get(client, origin))[0] == 200  # request 0, connection 1
        assert (await get(client, origin))[0] == 200  # request 1 closed, sent again as request 2
        assert upstream.accepted == 2
        assert (await get(client, origin))[0] == 200  # request 3 on connection 2

        async def stream() -> AsyncIterator[bytes]:
            yield b"part"

        with pytest.raises((Disconnected, SendFailed)):  # request 4: closed; a streamed body cannot be replayed
            await client.request(origin, "POST", "/", CIMultiDict(), stream(), TIMEOUTS)
        assert upstream.accepted == 2
        assert (await get(client, origin))[0] == 200  # request 5, connection 3
        with pytest.raises(Disconnected):  # request 6: closed; a POST is not idempotent, even without a body
            await get(client, origin, method="POST")
        assert upstream.accepted == 3

    run(close_second, body)


def test_head_ends_at_the_headers_and_the_connection_is_reused():
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-A: 1\r\n\r\n")
        else:
            writer.write(OK)
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        status, headers, data = await get(client, origin, method="HEAD")
        assert (status, headers["Content-Length"], headers["X-A"], data) == (200, "1000", "1", b"")
        assert await get(client, origin) == (200, CIMultiDict({"Content-Length": "2"}), b"ok")
        status, headers, data = await get(client, origin, method="HEAD")
        assert (status, data) == (200, b"")

    assert run(answer, body).accepted == 1


def test_bytes_beyond_the_answer_retire_the_connection():
    """An upstream that sends more than the answer (the start of another one nobody asked
    for): the connection is not reused, so the next request never reads those bytes."""

    async def extra(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if n == 0:
            writer.write(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nbog")
            return True  # and would answer the next request on this connection
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        assert (await get(client, origin))[2] == b"ok"
        assert (await get(client, origin, timeouts=Timeouts(2.0, 1.0, 2.0)))[2] == b"second"

    assert run(extra, body).accepted == 2


def test_informational_answers_are_skipped():
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + OK)
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        for _ in range(2):
            status, headers, data = await get(client, origin)
            assert (status, data, "Link" in headers) == (200, b"ok", False)

    assert run(answer, body).accepted == 1


def test_a_chunked_answer_streams_and_the_connection_is_reused():
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello ", b"chunked ", b"world"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        for _ in range(2):
            response = await client.request(origin, "GET", "/", CIMultiDict(), None, TIMEOUTS)
            assert response.content_length is None
            pieces = []
            while chunk := await response.chunk():
                pieces.append(chunk)
            response.release()
            assert b"".join(pieces) == b"hello chunked world"
            assert len(pieces) >= 2  # streamed, not buffered whole

    assert run(answer, body).accepted == 1


def test_connection_close_and_http_1_0_answers_are_not_reused():
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if n == 0:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.2)  # still open: the client must close it, not reuse it
            return False
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil the close")  # no length: the body ends with the connection
        return False

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        assert (await get(client, origin))[2] == b"ok"
        assert (await get(client, origin))[2] == b"until the close"

    assert run(answer, body).accepted == 2


def test_a_malformed_status_line_is_a_bad_response():
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        with pytest.raises(BadResponse):
            await get(client, origin)

    run(answer, body)


def test_the_sweep_times_out_a_silent_head_and_a_stalled_body():
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if n == 0:
            await asyncio.sleep(5)  # no answer at all
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            await asyncio.sleep(5)  # and then nothing
        return False

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        timeouts = Timeouts(2.0, 0.3, 10.0)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await client.request(origin, "GET", "/", CIMultiDict(), None, timeouts)
        assert 0.3 <= time.monotonic() - started < 0.3 + 3 * TICK_S + 0.2
        response = await client.request(origin, "GET", "/", CIMultiDict(), None, timeouts)
        assert await response.chunk() == b"abc"
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await response.chunk()
        assert 0.3 <= time.monotonic() - started < 0.3 + 3 * TICK_S + 0.2
        response.release()
        assert not client.inflight

    run(answer, body)


def test_the_total_timeout_holds_against_a_trickle():
    async def trickle(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        started = time.monotonic()
        response = await client.request(origin, "GET", "/", CIMultiDict(), None, Timeouts(2.0, 0.5, 0.6))

        async def drain() -> None:
            while await response.chunk():
                pass

        with pytest.raises(UpstreamTimeout):
            await drain()
        assert 0.6 <= time.monotonic() - started < 0.6 + 3 * TICK_S + 0.2

    run(trickle, body)


def test_connect_timeout_counts_the_wait_for_a_pooled_connection():
    async def slow(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(1.0)
        writer.write(OK)
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        first = asyncio.create_task(get(client, origin))
        await asyncio.sleep(0.1)
        with pytest.raises(ConnectTimeout):  # the one connection is busy for a second
            await get(client, origin, timeouts=Timeouts(0.2, 5.0, 10.0))
        assert (await first)[0] == 200

    assert run(slow, body, max_connections=1).accepted == 1


def test_the_pool_limit_queues_requests_first_in_first_out():
    async def slow(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        writer.write(OK)
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        tasks = []
        for i in range(8):
            tasks.append(asyncio.create_task(get(client, origin, f"/{i}")))
            await asyncio.sleep(0.005)  # issued in order
        results = await asyncio.gather(*tasks)
        assert [r[0] for r in results] == [200] * 8

    upstream = run(slow, body, max_connections=2)
    assert upstream.most == 2
    assert upstream.accepted == 2
    order = [int(h.split(b" ")[1][1:]) for h in upstream.requests]
    assert order == list(range(8))


def test_idle_connections_close_after_idle_s():
    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        await asyncio.gather(*(get(client, origin) for _ in range(3)))
        assert upstream.open == 3
        await asyncio.sleep(0.5)
        assert upstream.open == 0
        assert (await get(client, origin))[0] == 200

    assert run(ok, body, idle_s=0.2).accepted == 4


def test_request_bodies_with_and_without_a_length():
    async def echo(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if b"Transfer-Encoding: chunked" in head:
            data = b""
            while True:
                size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                data += (await reader.readexactly(size + 2))[:-2]
                if not size:
                    break
        else:
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            data = await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        return True

    big = bytes(range(256)) * 8192  # 2 MiB: the upstream must take it in pieces

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        r = await client.request(origin, "POST", "/", CIMultiDict(), b"small", TIMEOUTS)
        assert await r.read() == b"small"
        r.release()
        r = await client.request(origin, "POST", "/", CIMultiDict(), stream(), TIMEOUTS)
        assert await r.read() == big
        r.release()
        r = await client.request(origin, "PUT", "/", CIMultiDict({"Content-Length": str(len(big))}), stream(),
                                 TIMEOUTS)
        assert await r.read() == big
        r.release()
        r = await client.request(origin, "POST", "/", CIMultiDict(), None, TIMEOUTS)  # Content-Length: 0, as aiohttp
        assert await r.read() == b""
        r.release()

    upstream = run(echo, body)
    assert upstream.accepted == 1
    assert b"Content-Length: 5\r\n" in upstream.requests[0]
    assert b"Transfer-Encoding: chunked\r\n" in upstream.requests[1]
    assert b"Transfer-Encoding" not in upstream.requests[2]
    assert b"Content-Length: 0\r\n" in upstream.requests[3]


def test_an_answer_before_the_whole_body_stops_the_upload():
    """An upstream refusing a large upload without reading it (413 and no more reads):
    the answer is returned at once, not after the read timeout."""

    async def refuse(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.3)  # the client fills the socket buffers and waits for them to drain
        writer.write(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 6\r\n\r\ntoo")
        await writer.drain()
        await asyncio.sleep(0.5)  # the head is in, the body not yet whole
        writer.write(b"big")
        await writer.drain()
        await asyncio.sleep(3)  # reads nothing more
        return False

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield b"z" * 65536  # 16 MiB: far more than the socket buffers hold

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        started = time.monotonic()
        r = await client.request(origin, "POST", "/", CIMultiDict(), stream(), Timeouts(2.0, 2.0, 10.0))
        assert r.status == 413
        assert time.monotonic() - started < 0.7  # at the head, not at the end of the body nor the read timeout
        assert await r.read() == b"toobig"
        r.release()

    run(refuse, body, rcvbuf=65536)


def test_a_large_answer_read_slowly_pauses_the_upstream_and_arrives_whole():
    size = 8 * 1024 * 1024

    async def big(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"y" * 65536)
            await writer.drain()
        return True

    async def body(client: UpstreamClient, origin: Origin, upstream: Scripted) -> None:
        r = await client.request(origin, "GET", "/", CIMultiDict(), None, TIMEOUTS)
        await asyncio.sleep(0.3)  # the upstream fills what it can, then must wait
        conn = r.conn
        assert conn is not None
        assert conn.reading_paused
        assert r.buffered < 4 * 1024 * 1024
        total = 0
        while chunk := await r.chunk():
            total += len(chunk)
        r.release()
        assert total == size

    run(big, body)


class MalformedUpstream(RawUpstream):
    """Answers every request with ``answer`` (by default a broken status line), then
    closes the connection."""

    def __init__(self, answer: bytes = b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok") -> None:
        self.answer = answer
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(self.answer)
        conn.close()


def through_gateway(start_gateway, publish, world, upstream: RawUpstream, times: int = 1) -> list[httpx.Response]:
    """``times`` GETs through a gateway whose echo route points at ``upstream``, on one connection."""
    publish.route(upstream.url)
    gateway = start_gateway()
    with httpx.Client(headers={"X-API-Key": world.alice_key}) as client:
        return [client.get(f"{gateway.url}/echo/v1/") for _ in range(times)]


def test_a_malformed_upstream_answer_is_a_502_through_the_gateway(start_gateway, publish, world):
    with MalformedUpstream() as upstream:
        (r,) = through_gateway(start_gateway, publish, world, upstream)
    assert r.status_code == 502
    assert r.json()["type"].endswith("/upstream-unreachable")


def test_a_small_answer_that_breaks_off_is_a_502_not_a_500(start_gateway, publish, world):
    """Nothing is relayed before a small answer is whole, so its failure is still a 502."""
    with MalformedUpstream(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") as upstream:
        (r,) = through_gateway(start_gateway, publish, world, upstream)
    assert r.status_code == 502
    assert r.json()["type"].endswith("/upstream-unreachable")


def self_signed(tmp_path, name: str) -> tuple[str, str]:
    """A certificate for ``name`` (and 127.0.0.1) and its key, made with openssl."""
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


def test_https_upstreams_are_verified_with_sni(tmp_path):
    cert, key = self_signed(tmp_path, "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,func-returns-value]

    async def main() -> None:
        upstream = Scripted(ok)
        server = await asyncio.start_server(upstream._client, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        client = UpstreamClient(10, 30.0)
        client.ssl_context = ssl.create_default_context(cafile=cert)  # trust this one certificate
        try:
            origin = Origin("https", "localhost", port, f"localhost:{port}")
            for _ in range(2):
                assert await get(client, origin) == (200, CIMultiDict({"Content-Length": "2"}), b"ok")
            assert upstream.accepted == 1
            assert names == ["localhost"]
            assert upstream.requests[0].startswith(f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\n".encode())
            # A certificate that does not name the host is refused: a connect error, not an answer.
            client.ssl_context = ssl.create_default_context()  # the system's CAs only
            with pytest.raises(ConnectFailed):
                await get(client, Origin("https", "127.0.0.1", port, f"127.0.0.1:{port}"))
        finally:
            await client.close()
            server.close()

    asyncio.run(main())


class OneAnswerUpstream(RawUpstream):
    """Answers one request per connection as if keeping it alive (no Connection: close),
    then takes the next request and closes the connection without a byte of answer (an
    upstream's idle timeout firing just as the gateway reuses the connection)."""

    def serve(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            for answer in (True, False):
                data = b""
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                if answer:
                    conn.sendall(OK)


def test_stale_pooled_connections_never_become_502s_through_the_gateway(start_gateway, publish, world):
    with OneAnswerUpstream() as upstream:
        statuses = [r.status_code for r in through_gateway(start_gateway, publish, world, upstream, times=20)]
        assert statuses == [200] * 20
        assert upstream.accepted >= 20
