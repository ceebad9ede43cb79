"""A Redis connection shared by every request of a worker, with automatic pipelining.

Why not redis-py's asyncio client on the request path: it lends one connection
per in-flight command, so 50 concurrent requests open 50 connections and pay
for the pool on every call; measured under wrk -c50 it was the largest cost in
the limiter and, on a loaded box, new connections hit the 50 ms connect timeout.
Here every command of the worker goes down one connection: commands issued in
the same event-loop tick are written with one syscall, and replies, which Redis
returns in order, resolve the waiting futures first-in first-out. Parsing is
hiredis's (the C parser redis-py itself uses).

Timeouts: the oldest unanswered command is checked by a watchdog; if it has
waited longer than ``timeout``, the connection is dropped and every pending
command fails with redis.exceptions.TimeoutError, so a hung Redis costs at most
one timeout and the failure modes take effect within it. Errors are redis-py's
exception classes, so callers catch one family whichever client they use.

redis-py remains the client for pub/sub only (state.py), which blocks on purpose.
Metering writes go through a MuxRedis too, but a second one with a 1 s timeout
(app.py): a batch of XADDs never queues in front of a limiter call, and a slow
write cannot trip the request path's timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float


def encode_command(args: tuple[Arg, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: MuxRedis) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Small request/reply traffic: never let Nagle hold a command back.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.owner.pending
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if not pending:
                self.owner.drop(RedisConnectionError("reply without a request"))
                return
            future, _ = pending.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                future.set_exception(
                    NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
                )
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self, exc)


class MuxRedis:
    def __init__(self, url: str, *, timeout: float) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", ""):
            raise ValueError(f"only redis:// URLs are supported here, not {url!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self.db = int((parsed.path or "/0").lstrip("/") or 0)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.timeout = timeout
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.protocol: _Protocol | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._scripts: dict[str, bytes] = {}
        self._grace_for: asyncio.Future[Any] | None = None

    # --- connection ---------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(self), self.host, self.port), self.timeout
            )
        except (TimeoutError, OSError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {self.host}:{self.port}: {exc}") from exc
        self.protocol = protocol
        if self.password:
            auth: tuple[Arg, ...] = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            await self._send(auth)
        if self.db:
            await self._send(("SELECT", self.db))

    async def _ensure(self) -> None:
        if self.protocol is not None:
            return
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    def lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        # A connection we already dropped reports its end later: its commands were failed then.
        if self.protocol is protocol:
            self.protocol = None
            self._fail_pending(RedisConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def drop(self, exc: Exception) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()
        self._fail_pending(exc)

    def _fail_pending(self, exc: Exception) -> None:
        pending, self.pending = self.pending, collections.deque()
        for future, _ in pending:
            if not future.done():
                future.set_exception(exc)
        self._wbuf.clear()

    # --- sending ------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._wbuf:
            return
        data = b"".join(self._wbuf)
        self._wbuf.clear()
        protocol = self.protocol
        if protocol is None or protocol.transport is None:
            self._fail_pending(RedisConnectionError("Redis connection lost"))
            return
        protocol.transport.write(data)

    def _check_timeouts(self) -> None:
        self._watchdog = None
        if not self.pending:
            return
        loop = asyncio.get_running_loop()
        head = self.pending[0][0]
        if self.pending[0][1] <= loop.time():
            if self._grace_for is not head:
                # The loop may have been busy and the reply may be sitting unread in the
                # socket: let one I/O poll happen before blaming Redis.
                self._grace_for = head
                self._watchdog = loop.call_later(0.001, self._check_timeouts)
                return
            self.drop(RedisTimeoutError(f"Redis did not answer within {self.timeout * 1000:.0f} ms"))
            return
        self._watchdog = loop.call_at(self.pending[0][1], self._check_timeouts)

    def _send(self, args: tuple[Arg, ...]) -> asyncio.Future[Any]:
        return self._send_raw(encode_command(args), 1)[0]

    def _send_raw(self, data: bytes, replies: int) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        futures: list[asyncio.Future[Any]] = []
        for _ in range(replies):
            future: asyncio.Future[Any] = loop.create_future()
            self.pending.append((future, deadline))
            futures.append(future)
        self._wbuf.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._check_timeouts)
        return futures

    async def execute(self, *args: Arg) -> Any:
        if self.protocol is None:
            await self._ensure()
        return await self._send(args)

    # --- helpers ------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value = await self.execute("GET", key)
        assert value is None or isinstance(value, bytes)
        return value

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        flat = await self.execute("HGETALL", key)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def script_sha(self, script: str) -> bytes:
        sha = self._scripts.get(script)
        if sha is None:
            sha = self._scripts[script] = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest().encode()
        return sha

    async def evalsha_encoded(self, script: str, command: bytes) -> Any:
        """Run an EVALSHA the caller encoded itself (see script_sha), loading the script
        on NOSCRIPT. For the hot path, where re-encoding constant arguments would show."""
        if self.protocol is None:
            await self._ensure()
        try:
            return await self._send_raw(command, 1)[0]
        except NoScriptError:
            await self.execute("SCRIPT", "LOAD", script)
            return await self._send_raw(command, 1)[0]

    async def pipeline_raw(self, data: bytes, replies: int) -> list[Any]:
        """Send already RESP-encoded commands (``replies`` of them) and wait for their replies."""
        if self.protocol is None:
            await self._ensure()
        return list(await asyncio.gather(*self._send_raw(data, replies)))

    # --- the topology-neutral interface ---------------------------------------------------
    # Policies use these three (with execute/get/hgetall): they name their keys, so a
    # cluster-aware client can route each command to the node that owns its slot.

    async def evalsha(self, script: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """EVALSHA of ``script`` with every key it touches in ``keys`` (cluster rule)."""
        command = encode_command(("EVALSHA", self.script_sha(script), len(keys), *keys, *args))
        return await self.evalsha_encoded(script, command)

    async def pipeline(self, commands: Sequence[tuple[Arg, ...]]) -> list[Any]:
        """Send several commands at once and return their replies in order."""
        if not commands:
            return []
        return await self.pipeline_raw(b"".join(encode_command(c) for c in commands), len(commands))

    async def close(self) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
