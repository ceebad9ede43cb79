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

Topologies (tollway/redis_url.py parses REDIS_URL / GATEWAY_REDIS_URL): MuxRedis speaks
to one endpoint: TCP (``redis://``), TLS (``rediss://``, an ssl context with the
configured CA and hostname verification), a unix socket, or the master that Sentinel
names, asked again on every reconnection (a failover closes our connection; a READONLY
reply, from a master demoted under us, drops it too). AUTH [user] password and SELECT
are sent first on every connection. A Redis Cluster gets ``ClusterMux``: one MuxRedis
per master and a slot map, following MOVED and ASK. Why MuxRedis and not a library
client is measured in docs/performance.md (bench/redis_clients.py): on the gateway's
workload it did about 3x the requests of the best library client (valkey-glide), and
redis-py's RedisCluster opened a connection per in-flight command, which under load
missed the 50 ms timeout. ``new_handle`` picks the handle for the URL's topology.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import hiredis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tollway.redis_url import RedisTarget, parse_redis_url, sentinel_master, ssl_context

Arg = bytes | str | int | float
# With Sentinel: how often a connected MuxRedis asks where the master is (see _watch_sentinel).
SENTINEL_CHECK_S = 0.5


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
                if message.startswith("READONLY"):
                    # We are talking to a replica: a master demoted by a failover. Drop the
                    # connection so that the next command asks Sentinel where the master is.
                    self.owner.drop(RedisConnectionError(f"Redis answered {message!r}: reconnecting"))
                    return
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost(self, exc)


class _Commands:
    """What MuxRedis and ClusterMux share, built on their own ``execute``."""

    _scripts: dict[str, bytes]

    async def execute(self, *args: Arg) -> Any:
        raise NotImplementedError

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


class MuxRedis(_Commands):
    def __init__(self, target: RedisTarget | str, *, timeout: float) -> None:
        if isinstance(target, str):
            target = parse_redis_url(target)
        if target.kind == "cluster":
            raise ValueError("MuxRedis speaks to one endpoint; use ClusterMux (new_handle) for a cluster")
        self.target = target
        self.host = target.host if target.hosts else ""
        self.port = target.port if target.hosts else 0
        self.db = target.db
        self.username = target.username
        self.password = target.password
        # Built once, so that an unreadable CA fails at start-up (EnvError naming the variable).
        self.ssl: ssl.SSLContext | None = ssl_context(target) if target.tls else None
        self.timeout = timeout
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.protocol: _Protocol | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._scripts: dict[str, bytes] = {}
        self._grace_for: asyncio.Future[Any] | None = None
        self._sentinel_watch: asyncio.Task[None] | None = None

    # --- connection ---------------------------------------------------------------------

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        target = self.target
        if target.kind == "unix":
            _, protocol = await loop.create_unix_connection(lambda: _Protocol(self), target.path)
            return protocol
        if target.kind == "sentinel":
            # Asked on every connection: after a failover the master is elsewhere.
            self.host, self.port = await sentinel_master(target, timeout=self.timeout)
        _, protocol = await loop.create_connection(
            lambda: _Protocol(self),
            self.host,
            self.port,
            ssl=self.ssl,
            server_hostname=self.host if self.ssl is not None else None,
        )
        return protocol

    async def _watch_sentinel(self) -> None:
        """After a failover the old master accepts writes until Sentinel demotes it, seconds
        later, and then drops them. So ask the sentinels every SENTINEL_CHECK_S while
        connected, and move as soon as they name another master."""
        while True:
            await asyncio.sleep(SENTINEL_CHECK_S)
            if self.protocol is None:
                continue
            try:
                master = await sentinel_master(self.target, timeout=max(self.timeout, 0.5))
            except (RedisConnectionError, OSError):
                continue  # no sentinel answers: keep the master we have
            if master != (self.host, self.port) and self.protocol is not None:
                self.drop(RedisConnectionError(f"Sentinel moved the master to {master[0]}:{master[1]}"))

    def where(self) -> str:
        return self.target.path if self.target.kind == "unix" else f"{self.host}:{self.port}"

    async def _connect(self) -> None:
        try:
            protocol = await asyncio.wait_for(self._open(), self.timeout)
        except (TimeoutError, OSError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {self.where()}: {exc}") from exc
        self.protocol = protocol
        if self.target.kind == "sentinel" and self._sentinel_watch is None:
            self._sentinel_watch = asyncio.ensure_future(self._watch_sentinel())
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

    async def pipeline_settled(self, commands: Sequence[tuple[Arg, ...]]) -> list[Any]:
        """As pipeline, but a command's error reply is returned in its place, not raised
        (the cluster handle redirects those one by one). A lost connection still raises."""
        if self.protocol is None:
            await self._ensure()
        futures = self._send_raw(b"".join(encode_command(c) for c in commands), len(commands))
        results = list(await asyncio.gather(*futures, return_exceptions=True))
        for result in results:
            if isinstance(result, (RedisConnectionError, RedisTimeoutError)):
                raise result
        return results

    async def close(self) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._sentinel_watch is not None:
            self._sentinel_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sentinel_watch
            self._sentinel_watch = None


class RedisHandle(Protocol):
    """What the gateway's request path may ask of Redis, on every topology."""

    async def execute(self, *args: Arg) -> Any: ...

    async def get(self, key: str) -> bytes | None: ...

    async def hgetall(self, key: str) -> dict[bytes, bytes]: ...

    async def evalsha(self, script: str, keys: Sequence[str], args: Sequence[Arg]) -> Any: ...

    async def pipeline(self, commands: Sequence[tuple[Arg, ...]]) -> list[Any]: ...

    # Pre-encoded forms for the hottest paths (MuxRedis sends the bytes as they are).
    def script_sha(self, script: str) -> bytes: ...

    async def evalsha_encoded(self, script: str, command: bytes) -> Any: ...

    async def pipeline_raw(self, data: bytes, replies: int) -> list[Any]: ...

    async def close(self) -> None: ...


def _decode_commands(data: bytes, count: int) -> list[tuple[Arg, ...]]:
    """RESP-encoded commands back into argument tuples (a request is a RESP array of bulk strings)."""
    reader = hiredis.Reader()
    reader.feed(data)
    commands: list[tuple[Arg, ...]] = []
    for _ in range(count):
        command = reader.gets()
        if command is False or not isinstance(command, list):
            raise ValueError("truncated or malformed RESP command")
        name = command[0]
        commands.append((name.decode() if isinstance(name, bytes) else name, *command[1:]))
    return commands


def _slot(key: Arg) -> int:
    return int(key_slot(key if isinstance(key, bytes) else str(key).encode()))


def _redirect(exc: BaseException) -> tuple[str, int, tuple[str, int]] | None:
    """("MOVED"|"ASK", slot, (host, port)) for a redirection reply, else None."""
    if not isinstance(exc, ResponseError):
        return None
    parts = str(exc).split()
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = parts[2].rpartition(":")
    return parts[0], int(parts[1]), (host, int(port))


MAX_REDIRECTS = 5


class ClusterMux(_Commands):
    """The handle on a Redis Cluster: one MuxRedis per master (so one connection per
    node, with the same pipelining and timeouts), a slot map read with CLUSTER SLOTS,
    and each command sent to the node that owns its key's slot. MOVED updates the map
    (and refreshes it in the background) and the command is sent again; ASK sends ASKING
    and the command together to the node named, without touching the map. A connection
    error is raised at once (the failure mode applies) and the map is read again before
    the next command, which is how a failover is followed."""

    def __init__(self, target: RedisTarget | str, *, timeout: float) -> None:
        if isinstance(target, str):
            target = parse_redis_url(target)
        if target.tls:
            ssl_context(target)  # an unreadable CA fails here, naming the variable
        self.target = target
        self.timeout = timeout
        self.nodes: dict[tuple[str, int], MuxRedis] = {}
        self.slots: list[tuple[str, int] | None] = [None] * 16384
        self._stale = True
        self._refreshing: asyncio.Future[None] | None = None
        self._scripts: dict[str, bytes] = {}

    def _node(self, address: tuple[str, int]) -> MuxRedis:
        node = self.nodes.get(address)
        if node is None:
            node_target = replace(self.target, kind="tcp", hosts=(address,), db=0)
            node = self.nodes[address] = MuxRedis(node_target, timeout=self.timeout)
        return node

    async def _read_slots(self) -> None:
        errors: list[str] = []
        candidates = list(dict.fromkeys([*self.nodes, *self.target.hosts]))
        for address in candidates:
            try:
                reply = await self._node(address).execute("CLUSTER", "SLOTS")
            except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
                errors.append(f"{address[0]}:{address[1]}: {exc}")
                continue
            slots: list[tuple[str, int] | None] = [None] * 16384
            for start, end, master, *_ in reply:
                host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
                owner = (host or address[0], int(master[1]))
                for slot in range(int(start), int(end) + 1):
                    slots[slot] = owner
            self.slots = slots
            self._stale = False
            # Nodes that own nothing any more (failed over, removed) are closed.
            owners = set(slots)
            for gone in [a for a in self.nodes if a not in owners and a not in self.target.hosts]:
                await self.nodes.pop(gone).close()
            return
        raise RedisConnectionError(f"no node of the Redis Cluster answered CLUSTER SLOTS: {'; '.join(errors)}")

    async def _refresh(self) -> None:
        """Read the slot map once, however many callers ask at the same time."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read_slots())
        refreshing = self._refreshing
        try:
            await asyncio.shield(refreshing)
        finally:
            if refreshing.done() and self._refreshing is refreshing:
                self._refreshing = None

    def _refresh_later(self) -> None:
        self._stale = True

    async def _owner(self, slot: int) -> MuxRedis:
        if self._stale:
            await self._refresh()
        address = self.slots[slot]
        if address is None:
            await self._refresh()
            address = self.slots[slot]
            if address is None:
                raise RedisConnectionError(f"no node of the Redis Cluster serves slot {slot}")
        return self._node(address)

    async def _run(self, slot: int | None, args: tuple[Arg, ...]) -> Any:
        node = await self._owner(slot if slot is not None else 0)
        for _ in range(MAX_REDIRECTS):
            try:
                return await node.execute(*args)
            except (RedisConnectionError, RedisTimeoutError):
                self._refresh_later()
                raise
            except ResponseError as exc:
                redirect = _redirect(exc)
                if redirect is None:
                    raise
                kind, moved_slot, address = redirect
                if kind == "ASK":
                    _, reply = await self._node(address).pipeline_settled([("ASKING",), args])
                    if isinstance(reply, BaseException):
                        raise reply from exc
                    return reply
                self.slots[moved_slot] = address
                self._refresh_later()
                node = self._node(address)
        raise RedisConnectionError(f"too many redirections for {args[0]!r}")

    async def execute(self, *args: Arg) -> Any:
        return await self._run(_slot(args[1]) if len(args) > 1 else None, args)


    async def evalsha(self, script: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Every key in ``keys`` must share one slot (one hash tag): the script runs there."""
        slot = _slot(keys[0]) if keys else None
        command = ("EVALSHA", self.script_sha(script), len(keys), *keys, *args)
        try:
            return await self._run(slot, command)
        except NoScriptError:
            # EVAL runs it and caches it on that node: the next EVALSHA finds it.
            return await self._run(slot, ("EVAL", script, len(keys), *keys, *args))

    async def evalsha_encoded(self, script: str, command: bytes) -> Any:
        (decoded,) = _decode_commands(command, 1)
        numkeys = int(decoded[2])
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in decoded[3 : 3 + numkeys]]
        return await self.evalsha(script, keys, decoded[3 + numkeys :])

    async def pipeline(self, commands: Sequence[tuple[Arg, ...]]) -> list[Any]:
        """One pipeline per node, sent concurrently; a command redirected (MOVED, ASK) is
        sent again alone, the others are not repeated. The first other error is raised."""
        if not commands:
            return []
        if self._stale:
            await self._refresh()
        by_node: dict[tuple[str, int], list[int]] = {}
        for index, command in enumerate(commands):
            address = self.slots[_slot(command[1])] if len(command) > 1 else self.slots[0]
            if address is None:
                await self._refresh()
                address = self.slots[_slot(command[1])] if len(command) > 1 else self.slots[0]
                if address is None:
                    raise RedisConnectionError("the Redis Cluster does not cover every slot")
            by_node.setdefault(address, []).append(index)

        async def send(address: tuple[str, int], indexes: list[int]) -> list[Any]:
            try:
                return await self._node(address).pipeline_settled([commands[i] for i in indexes])
            except (RedisConnectionError, RedisTimeoutError):
                self._refresh_later()
                raise

        groups = list(by_node.items())
        settled = await asyncio.gather(*(send(address, indexes) for address, indexes in groups))
        replies: list[Any] = [None] * len(commands)
        for (_, indexes), results in zip(groups, settled, strict=True):
            for index, result in zip(indexes, results, strict=True):
                replies[index] = result
        redo = [i for i, r in enumerate(replies) if isinstance(r, BaseException) and _redirect(r) is not None]
        if redo:
            again = await asyncio.gather(*(self.execute(*commands[i]) for i in redo), return_exceptions=True)
            for index, result in zip(redo, again, strict=True):
                replies[index] = result
        for result in replies:
            if isinstance(result, BaseException):
                if isinstance(result, (RedisConnectionError, RedisTimeoutError)):
                    self._refresh_later()
                raise result
        return replies

    async def pipeline_raw(self, data: bytes, replies: int) -> list[Any]:
        return await self.pipeline(_decode_commands(data, replies))

    async def close(self) -> None:
        nodes, self.nodes = list(self.nodes.values()), {}
        for node in nodes:
            await node.close()


def new_handle(target: RedisTarget | str, *, timeout: float) -> MuxRedis | ClusterMux:
    """The handle for ``target``'s topology: ClusterMux on a cluster, MuxRedis elsewhere."""
    if isinstance(target, str):
        target = parse_redis_url(target)
    if target.kind == "cluster":
        return ClusterMux(target, timeout=timeout)
    return MuxRedis(target, timeout=timeout)
