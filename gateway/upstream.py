"""The gateway's HTTP/1.1 client for the upstreams, on the request path.

Why not aiohttp's ClientSession: its per-request machinery (ClientRequest and
ClientResponse objects, a StreamReader, a TimeoutHandle and TimerContext, a sock_read
timer rescheduled per chunk) was the largest Python cost of a proxied request after
the socket sends (docs/performance.md). This client is one asyncio.Protocol per
connection, parsing responses with httptools (llhttp), and a per-worker pool:

* Pool per (scheme, host, port): at most ``max_connections`` open or opening; more
  requests wait in a FIFO queue; idle connections are reused last-in first-out (the
  warmest first) and closed after ``idle_s``.
* Timeouts come from one sweep per worker (every ``TICK_S``), over the exchanges in
  flight, never from per-request timers: connect (waiting for a pooled connection or
  opening one), read (no byte from the upstream while we wait for one, or the upstream
  taking none of a request body we are sending), total (from the start until the
  response is released). A timeout fires up to one tick late.
* A pooled connection the upstream closed while idle is not an error: the request is
  retried once on a fresh connection when no byte of the answer arrived and the request
  can be replayed (Go net/http's rule: idempotent with a body we hold, or no body).

Websockets and the active health checks stay on aiohttp's session (not per request).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httptools
from multidict import CIMultiDict

TICK_S = 0.05  # the sweep's period: timeouts fire up to this late
DNS_TTL_S = 60.0  # as aiohttp's ttl_dns_cache was
HIGH_WATER = 256 * 1024  # buffered response bytes above which reading pauses
LOW_WATER = 64 * 1024  # ... and below which it resumes
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Methods that get "Content-Length: 0" without a body (as aiohttp did: not these).
NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class RequestHead:
    """A request's header lines, rendered once by the proxy ("Name: value\r\n" each; the
    client adds the request line, Host and the framing), and whether Content-Length is
    among them."""

    __slots__ = ("count", "has_length", "lines")

    def __init__(self, headers: list[tuple[str, str]], has_length: bool) -> None:
        self.lines = "".join([f"{name}: {value}\r\n" for name, value in headers])
        self.count = len(headers)
        self.has_length = has_length

    @classmethod
    def of(cls, headers: CIMultiDict[str]) -> RequestHead:
        return cls(list(headers.items()), "Content-Length" in headers)


class UpstreamError(Exception):
    """Base of what a request to an upstream can fail with."""


class ConnectTimeout(UpstreamError):
    """No connection within the connect timeout (the pool's queue included)."""


class ConnectFailed(UpstreamError):
    """The connection could not be opened (refused, unreachable, DNS, TLS)."""


class Disconnected(UpstreamError):
    """The upstream closed the connection before its answer (or in the middle of it)."""


class NothingWritten(Disconnected):
    """The connection was gone before a byte of the request went."""


class SendFailed(UpstreamError):
    """Writing the request failed after part of it had gone."""


class BadResponse(UpstreamError):
    """The upstream's answer is not HTTP/1.x."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The read or total timeout passed."""


class Timeouts:
    """A route's timeouts, in seconds (0: none)."""

    __slots__ = ("connect", "read", "total")

    def __init__(self, connect: float, read: float, total: float) -> None:
        self.connect = connect
        self.read = read
        self.total = total


class Origin:
    """Where a target's requests go, computed once per target."""

    __slots__ = ("host", "host_header", "key", "port", "ssl")

    def __init__(self, scheme: str, host: str, port: int, host_header: str) -> None:
        self.host = host
        self.port = port
        self.ssl = scheme == "https"
        self.key = (scheme, host, port)
        self.host_header = host_header


class Pool:
    __slots__ = ("active", "idle", "limit", "origin", "waiters")

    def __init__(self, origin: Origin, limit: int) -> None:
        self.origin = origin
        self.limit = limit
        self.active = 0  # connections open or opening
        self.idle: list[Connection] = []  # the most recently used last
        self.waiters: collections.deque[asyncio.Future[Connection]] = collections.deque()


class UpstreamResponse:
    """One exchange: the response as it arrives, and the deadlines the sweep checks.

    ``headers`` is built on first use; the proxy reads ``raw_headers``."""

    __slots__ = (
        "_headers", "buffered", "chunks", "client", "complete", "conn", "connect_by", "content_length",
        "error", "head", "informational", "keep_alive", "progress", "raw_headers", "read_s", "reason",
        "received", "seen", "since", "status", "total_by", "until_close", "waiter", "waiting", "whole",
    )

    def __init__(self, client: UpstreamClient, head: bool, timeouts: Timeouts, now: float) -> None:
        self.client = client
        self.head = head
        self.conn: Connection | None = None
        self.status = 0
        self.reason = ""
        self.raw_headers: list[tuple[str, str]] = []
        self._headers: CIMultiDict[str] | None = None
        self.content_length: int | None = None
        self.until_close = False  # no length, not chunked: the body ends with the connection
        self.keep_alive = False
        self.informational = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.whole = False  # read() wants it all: no flow control
        self.complete = False
        self.received = False  # a byte of the answer arrived
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        # The sweep's view: progress counts events that restart the read timeout.
        self.waiting = False
        self.progress = 0
        self.seen = -1
        self.since = now
        self.read_s = timeouts.read
        self.total_by = now + timeouts.total if timeouts.total else 0.0
        self.connect_by = now + timeouts.connect if timeouts.connect else 0.0

    @property
    def headers(self) -> CIMultiDict[str]:
        if self._headers is None:
            self._headers = CIMultiDict(self.raw_headers)
        return self._headers

    # --- the proxy's side ---------------------------------------------------------

    async def _wait(self) -> None:
        waiter = self.waiter = self.client.loop.create_future()
        self.waiting = True
        self.progress += 1  # the read timeout counts from now
        try:
            await waiter
        finally:
            self.waiting = False
            self.waiter = None

    async def read(self) -> bytes:
        """The whole body (however large: the caller knows its length)."""
        self.whole = True
        conn = self.conn
        if conn is not None and conn.reading_paused:
            conn.resume()
        while not self.complete:
            if self.error is not None:
                raise self.error
            await self._wait()
        chunks = self.chunks
        if len(chunks) == 1:
            body = chunks.popleft()
        else:
            body = b"".join(chunks)
            chunks.clear()
        self.buffered = 0
        return body

    async def chunk(self) -> bytes:
        """The next piece of the body; b"" at its end."""
        while True:
            chunks = self.chunks
            if chunks:
                data = chunks.popleft()
                self.buffered -= len(data)
                conn = self.conn
                if conn is not None and conn.reading_paused and self.buffered <= LOW_WATER:
                    conn.resume()
                return data
            if self.complete:
                return b""
            if self.error is not None:
                raise self.error
            await self._wait()

    def close(self) -> None:
        """Done with it, whatever was left unread: the connection is dropped unless the
        exchange had completed."""
        self.client.inflight.discard(self)
        conn = self.conn
        if conn is not None:
            self.conn = None
            conn.abort()

    def release(self) -> None:
        """Done with it: a completed exchange's connection goes back to the pool (it may
        have already), any other is dropped."""
        self.close()

    # --- the connection's side ----------------------------------------------------

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = error
        self.wake()


class Connection(asyncio.Protocol):
    __slots__ = (
        "client", "discard", "drain", "lost", "parser", "pool", "reading_paused", "response",
        "reused", "sending", "transport", "used_at", "writing_paused",
    )

    def __init__(self, client: UpstreamClient, pool: Pool) -> None:
        self.client = client
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.reused = False
        self.sending = False  # the request is not all written yet
        self.discard = False  # after a HEAD: what the old parser still sees is not ours
        self.reading_paused = False
        self.writing_paused = False
        self.drain: asyncio.Future[None] | None = None
        self.lost = False
        self.used_at = 0.0

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.abort()  # bytes nobody asked for: the upstream broke the protocol
            return
        response.received = True
        response.progress += 1
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.discard:
                self.abort()
                return
            if response.status and not response.informational:
                response.fail(Disconnected(f"malformed body from the upstream: {exc}"))
            else:
                response.fail(BadResponse(f"malformed answer from the upstream: {exc}"))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.lost = True
        response = self.response
        if response is not None and not response.complete:
            if response.status and not response.informational and response.until_close:
                response.complete = True  # a body delimited by the close (HTTP/1.0 style)
                response.keep_alive = False
                response.wake()
            elif response.status and not response.informational:
                response.fail(Disconnected("the upstream closed the connection mid-body"))
            else:
                response.fail(Disconnected("the upstream closed the connection before answering"))
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionResetError("the upstream closed the connection"))
        self.client.forget(self)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # --- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        response = self.response
        if response is None or self.discard:
            self.abort()  # an answer nobody asked for (or bytes after a HEAD's): never reuse this one
            return
        response.raw_headers = []
        response.reason = ""

    def on_status(self, status: bytes) -> None:
        response = self.response
        if response is not None and not self.discard:
            response.reason += status.decode("utf-8", "surrogateescape")

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        if response is not None and not self.discard:
            response.raw_headers.append(
                (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            )

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None or self.discard:
            return
        parser = self.parser
        status = parser.get_status_code()
        if 100 <= status < 200:
            response.informational = True  # 100 Continue, 103 Early Hints: not the answer
            response.status = status
            return
        response.informational = False
        response.status = status
        keep_alive = parser.should_keep_alive()
        length: int | None = None
        chunked = False
        until_close = True
        for name, value in response.raw_headers:
            lower = name.lower()
            if lower == "content-length":
                until_close = False
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif lower == "transfer-encoding":
                chunked = "chunked" in value.lower()
        if chunked:
            length = None
            until_close = False
        if status in (204, 304) or response.head:
            until_close = False
        response.content_length = length
        response.until_close = until_close
        response.keep_alive = keep_alive
        response.wake()
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_result(None)  # answered while its body was going: stop sending
        if response.head:
            # llhttp cannot be told the answer to HEAD has no body: end the message here
            # and give the next exchange a fresh parser.
            self.discard = True
            self._message_done(response)

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is None or self.discard:
            self.abort()  # a body after a HEAD's answer: never reuse this one
            return
        response.chunks.append(body)
        response.buffered += len(body)
        if response.buffered > HIGH_WATER and not response.whole and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        response.wake()

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or self.discard:
            return
        if response.informational:
            response.informational = False
            response.status = 0
            response.raw_headers = []
            return
        self._message_done(response)

    # --- ours ---------------------------------------------------------------------

    def _message_done(self, response: UpstreamResponse) -> None:
        response.complete = True
        response.wake()
        # The connection is free now, even if the proxy has not read the body yet.
        response.conn = None
        self.response = None
        if self.reading_paused:
            self.resume()  # idle, it must still see the upstream's close
        if response.keep_alive and not self.sending and not self.lost and not response.until_close:
            self.client.release(self)
        else:
            self.abort()

    def resume(self) -> None:
        self.reading_paused = False
        if self.transport is not None:
            self.transport.resume_reading()

    def usable(self) -> bool:
        transport = self.transport
        return transport is not None and not transport.is_closing()

    def abort(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()  # connection_lost follows, on the next loop iteration
        self.lost = True
        self.client.forget(self)

    def begin(self, response: UpstreamResponse) -> None:
        if self.discard:
            self.parser = httptools.HttpResponseParser(self)
            self.discard = False
        if self.reading_paused:
            self.resume()
        self.response = response
        response.conn = self

    async def drained(self, response: UpstreamResponse) -> None:
        """Wait until the upstream takes what we wrote; the read timeout applies."""
        while self.writing_paused and not (response.status and not response.informational):
            if self.transport is None:
                raise ConnectionResetError("the upstream closed the connection")
            self.drain = self.client.loop.create_future()
            response.waiting = True
            response.progress += 1
            try:
                await self.drain
            except ConnectionResetError:
                if response.error is not None:
                    raise response.error from None
                raise
            finally:
                response.waiting = False
                self.drain = None
            if response.error is not None:
                raise response.error


class UpstreamClient:
    """One per worker."""

    def __init__(self, max_connections: int, idle_s: float) -> None:
        self.max_connections = max_connections
        self.idle_s = idle_s
        self.pools: dict[tuple[str, str, int], Pool] = {}
        self.inflight: set[UpstreamResponse] = set()
        self.connecting: dict[asyncio.Future[Connection], tuple[UpstreamResponse, Pool]] = {}
        self.dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        self.ssl_context: ssl.SSLContext | None = None
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        self.tick: asyncio.TimerHandle | None = self.loop.call_later(TICK_S, self.sweep)

    async def close(self) -> None:
        if self.tick is not None:
            self.tick.cancel()
            self.tick = None
        for pool in self.pools.values():
            for conn in list(pool.idle):
                conn.abort()
        for response in list(self.inflight):
            response.fail(Disconnected("the gateway is stopping"))
            response.close()

    # --- the sweep ----------------------------------------------------------------

    def sweep(self) -> None:
        now = self.now = self.loop.time()
        for response in list(self.inflight):
            if response.progress != response.seen:
                response.seen = response.progress
                response.since = now
            error: UpstreamError | None = None
            if response.total_by and now >= response.total_by:
                error = UpstreamTimeout("total timeout")
            elif response.waiting and response.read_s and now - response.since >= response.read_s:
                error = UpstreamTimeout("read timeout")
            if error is not None:
                self.inflight.discard(response)
                response.fail(error)
                conn = response.conn
                if conn is not None:
                    response.conn = None
                    conn.abort()
        for ready, (response, _pool) in list(self.connecting.items()):
            if response.error is not None or (response.connect_by and now >= response.connect_by):
                del self.connecting[ready]
                if not ready.done():
                    ready.set_exception(response.error or ConnectTimeout("connect timeout"))
        cutoff = now - self.idle_s
        for pool in self.pools.values():
            idle = pool.idle
            while idle and idle[0].used_at <= cutoff:
                idle.pop(0).abort()  # the oldest first
        self.tick = self.loop.call_at(now + TICK_S, self.sweep)

    # --- the pool -----------------------------------------------------------------

    def pool(self, origin: Origin) -> Pool:
        pool = self.pools.get(origin.key)
        if pool is None:
            pool = self.pools[origin.key] = Pool(origin, self.max_connections)
        return pool

    def forget(self, conn: Connection) -> None:
        """The connection is gone (or going): it no longer counts toward its pool's limit."""
        pool = conn.pool
        if conn.pool is None:
            return
        conn.pool = None  # type: ignore[assignment]
        pool.active -= 1
        if conn in pool.idle:
            pool.idle.remove(conn)
        self._wake_one(pool)

    def _wake_one(self, pool: Pool) -> None:
        """A slot is free: the first live waiter opens a connection."""
        while pool.waiters and pool.active < pool.limit:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                pool.active += 1
                self._open(pool, waiter)
                return

    def release(self, conn: Connection) -> None:
        pool = conn.pool
        if pool is None or not conn.usable():
            conn.abort()
            return
        conn.reused = True
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.used_at = self.now
        pool.idle.append(conn)

    async def _acquire(self, pool: Pool, response: UpstreamResponse, fresh: bool) -> Connection:
        idle = pool.idle
        while idle and not fresh:
            conn = idle.pop()
            if conn.usable():
                return conn
            conn.abort()
        loop = self.loop
        ready: asyncio.Future[Connection] = loop.create_future()
        if pool.active < pool.limit:
            pool.active += 1
            self._open(pool, ready)
        else:
            pool.waiters.append(ready)
        self.connecting[ready] = (response, pool)
        try:
            return await ready
        except asyncio.CancelledError:
            if ready.done() and not ready.cancelled() and ready.exception() is None:
                self.release(ready.result())  # handed over just as the caller went away
            raise
        finally:
            self.connecting.pop(ready, None)

    def _open(self, pool: Pool, ready: asyncio.Future[Connection]) -> None:
        task = self.loop.create_task(self._connect(pool))

        def opened(task: asyncio.Task[Connection]) -> None:
            if task.cancelled() or task.exception() is not None:
                pool.active -= 1
                if not ready.done():
                    exc = task.exception() if not task.cancelled() else None
                    error = ConnectFailed(f"cannot connect to {pool.origin.host}:{pool.origin.port}: {exc}")
                    error.__cause__ = exc
                    ready.set_exception(error)
                self._wake_one(pool)
                return
            conn = task.result()
            if ready.done():
                self.release(conn)  # the caller timed out or went away meanwhile
            else:
                ready.set_result(conn)

        def abandoned(ready: asyncio.Future[Connection]) -> None:
            if not task.done():
                task.cancel()

        task.add_done_callback(opened)
        ready.add_done_callback(abandoned)

    async def _connect(self, pool: Pool) -> Connection:
        origin = pool.origin
        loop = self.loop
        key = (origin.host, origin.port)
        cached = self.dns.get(key)
        if cached is None or cached[0] < self.now:
            infos = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
            if not infos:
                raise OSError(f"no address for {origin.host}")
            cached = self.dns[key] = (self.now + DNS_TTL_S, infos)
        context = None
        if origin.ssl:
            if self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()
            context = self.ssl_context
        last: BaseException | None = None
        for info in cached[1]:
            family, proto, address = info[0], info[2], info[4]
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(self, pool),
                    host=str(address[0]),
                    port=int(address[1]),
                    family=family,
                    proto=proto,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
                return conn
            except OSError as exc:
                last = exc
        assert last is not None
        self.dns.pop(key, None)
        raise last

    # --- a request ----------------------------------------------------------------

    async def request(
        self,
        origin: Origin,
        method: str,
        target: str,
        headers: RequestHead | CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send the request; return once the response's head is in. Raises UpstreamError
        (or what ``body`` raised while it was being relayed)."""
        pool = self.pool(origin)
        head = headers if isinstance(headers, RequestHead) else RequestHead.of(headers)
        # Go net/http's rule: send again only what the upstream may safely see twice.
        replayable = method in IDEMPOTENT and (body is None or isinstance(body, bytes))
        response = UpstreamResponse(self, method == "HEAD", timeouts, self.loop.time())
        self.inflight.add(response)
        try:
            conn = await self._acquire(pool, response, False)
            try:
                await self._exchange(conn, response, method, target, head, body, origin)
            except Disconnected as exc:
                if not (conn.reused and not response.received and (replayable or isinstance(exc, NothingWritten))):
                    raise
                # A pooled connection the upstream had closed while it sat idle: once
                # more, on a fresh one (the same total deadline; a new connect timeout).
                response.error = None
                response.conn = None
                if timeouts.connect:
                    response.connect_by = self.loop.time() + timeouts.connect  # a connect timeout of its own
                conn = await self._acquire(pool, response, True)
                await self._exchange(conn, response, method, target, head, body, origin)
        except BaseException:
            response.close()
            raise
        return response

    async def _exchange(
        self,
        conn: Connection,
        response: UpstreamResponse,
        method: str,
        target: str,
        headers: RequestHead,
        body: bytes | AsyncIterator[bytes] | None,
        origin: Origin,
    ) -> None:
        conn.begin(response)
        transport = conn.transport
        if transport is None:
            raise NothingWritten("the upstream closed the connection before the request went")
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n", headers.lines]
        has_length = headers.has_length
        streamed = body is not None and not isinstance(body, bytes)  # the proxy's async iterator
        if body is None:
            if method not in NO_BODY_METHODS and not has_length:
                lines.append("Content-Length: 0\r\n")
        elif not streamed:
            if not has_length:
                lines.append(f"Content-Length: {len(body)}\r\n")  # type: ignore[arg-type]
        elif not has_length:
            lines.append("Transfer-Encoding: chunked\r\n")
        lines.append("\r\n")
        text = "".join(lines)
        # Every line ends in CRLF and nothing else breaks one: the request line and Host, the
        # headers, what was added here. A CR or LF inside a value would split it (aiohttp refused them too).
        breaks = len(lines) + headers.count
        if text.count("\n") != breaks or text.count("\r") != breaks:
            raise ValueError("Newline or carriage return character detected in HTTP status/header")
        head = text.encode("utf-8", "surrogateescape")
        if not streamed:
            transport.write(head + body if body else head)  # type: ignore[operator]
        else:
            assert isinstance(body, AsyncIterator)
            await self._send_stream(conn, response, transport, head, body, chunked=not has_length)
        await self._wait_head(conn, response)

    async def _send_stream(
        self,
        conn: Connection,
        response: UpstreamResponse,
        transport: asyncio.Transport,
        head: bytes,
        body: AsyncIterator[bytes],
        chunked: bool,
    ) -> None:
        conn.sending = True
        transport.write(head)
        try:
            async for chunk in body:  # what the client's body raises goes to the proxy as it is
                if response.status and not response.informational:
                    break  # the upstream answered before taking the whole body: stop sending
                if conn.transport is None:
                    raise SendFailed("the upstream closed the connection while the request body was sent")
                if not chunk:
                    continue
                if chunked:
                    transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                else:
                    transport.write(chunk)
                if conn.writing_paused:
                    try:
                        await conn.drained(response)
                    except ConnectionResetError:
                        raise SendFailed("the upstream closed the connection while the request body was sent") from None
            else:
                if chunked and conn.transport is not None:
                    transport.write(b"0\r\n\r\n")
                conn.sending = False
        except UpstreamTimeout:
            raise
        except UpstreamError:
            if response.status and not response.informational:
                return  # it answered already; the answer is what counts
            raise
        finally:
            if conn.sending:
                transport_now = conn.transport
                if transport_now is not None and not (response.status and not response.informational):
                    conn.abort()  # part of a request went: the connection cannot be reused

    async def _wait_head(self, conn: Connection, response: UpstreamResponse) -> None:
        while not response.status or response.informational:
            if response.error is not None:
                raise response.error
            await response._wait()
