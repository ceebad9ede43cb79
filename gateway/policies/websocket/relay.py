"""One proxied WebSocket: the upstream handshake first (so a failing upstream is still an
HTTP 502/504 to the client), then the client's, then messages relayed both ways until
either side closes, the connection idles or outlives its maximum, or its credential is
revoked. Bytes each way (message payloads) go to ``ctx.bytes_in`` and ``ctx.bytes_out``,
so the log phase meters the connection once, when it closes, with its duration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from gateway import metrics
from gateway.exceptions import Reject
from gateway.responses import _prepare_with_server

if TYPE_CHECKING:
    from gateway.route_policies import WebSocket
    from gateway.types import RequestContext

log = logging.getLogger("gateway.websocket")

CLOSE_TIMEOUT_S = 2.0
# Close codes sent to both sides when the gateway ends a connection.
IDLE = (WSCloseCode.GOING_AWAY, "idle timeout")
LIFETIME = (WSCloseCode.GOING_AWAY, "maximum lifetime reached")
REVOKED = (WSCloseCode.POLICY_VIOLATION, "credential revoked")
SHUTDOWN = (WSCloseCode.GOING_AWAY, "gateway shutting down")


class WebSocketResponse(web.WebSocketResponse):
    """aiohttp's, with the gateway's Server header (gateway/responses.py)."""

    async def _prepare_headers(self) -> None:
        await _prepare_with_server(self, super()._prepare_headers)


def is_upgrade(headers: Mapping[str, str]) -> bool:
    upgrade = headers.get("Upgrade")
    return upgrade is not None and upgrade.strip().lower() == "websocket"


class Registry(Protocol):
    def opened(self, connection: Connection) -> None: ...

    def closed(self, connection: Connection) -> None: ...


class Connection:
    """A live relay; ``close`` may be called from elsewhere (a revocation)."""

    def __init__(self, ctx: RequestContext, policy: WebSocket, registry: Registry) -> None:
        self.ctx = ctx
        self.policy = policy
        self.registry = registry
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        self.ended = asyncio.Event()
        self.reason: tuple[int, str] | None = None

    def close(self, reason: tuple[int, str]) -> None:
        if self.reason is None:
            self.reason = reason
        self.ended.set()

    async def run(
        self, session: aiohttp.ClientSession, url: URL, headers: CIMultiDict[str], handshake_timeout: float
    ) -> web.StreamResponse:
        ctx, policy = self.ctx, self.policy
        request = ctx.request
        for name in [n for n in headers if n.lower().startswith("sec-websocket-")]:
            headers.popall(name, None)  # aiohttp makes its own handshake with the upstream
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = tuple(p.strip() for p in offered.split(",") if p.strip())
        try:
            async with asyncio.timeout(handshake_timeout):
                upstream = await session.ws_connect(
                    url.with_scheme("wss" if url.scheme == "https" else "ws"),
                    headers=headers,
                    protocols=protocols,
                    autoclose=False,
                    autoping=True,
                    max_msg_size=policy.max_message_bytes,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT_S),
                )
        except aiohttp.WSServerHandshakeError as exc:
            metrics.UPSTREAM_ERRORS.labels("websocket_refused").inc()
            raise Reject(
                502, "upstream-refused-websocket", "Upstream refused the WebSocket", decision="upstream_error",
                detail=f"The upstream answered the WebSocket handshake with {exc.status}.",
            ) from None
        except TimeoutError:
            metrics.UPSTREAM_ERRORS.labels("timeout").inc()
            raise Reject(504, "upstream-timeout", "Upstream timed out", decision="upstream_error") from None
        except aiohttp.ClientError:
            metrics.UPSTREAM_ERRORS.labels("connect").inc()
            raise Reject(502, "upstream-unreachable", "Upstream unreachable", decision="upstream_error") from None
        try:
            client = WebSocketResponse(
                protocols=(upstream.protocol,) if upstream.protocol else (),
                autoclose=False,
                autoping=True,
                max_msg_size=policy.max_message_bytes,
                timeout=CLOSE_TIMEOUT_S,
            )
            for name, value in ctx.response_headers:
                client.headers.add(name, value)
            client.headers["X-Request-ID"] = ctx.request_id
            await client.prepare(request)
            ctx.status = 101
            self.registry.opened(self)
            try:
                await self._relay(client, upstream)
            finally:
                self.registry.closed(self)
            return client
        finally:
            if not upstream.closed:
                await upstream.close()

    async def _relay(self, client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
        loop = self.loop
        started = loop.time()
        inbound = asyncio.create_task(self._pump(client, upstream, inbound=True))
        outbound = asyncio.create_task(self._pump(upstream, client, inbound=False))
        ended = asyncio.create_task(self.ended.wait())
        try:
            while True:
                deadline = min(self.last_activity + self.policy.idle_timeout_s, started + self.policy.max_lifetime_s)
                timeout = deadline - loop.time()
                if timeout > 0:
                    done, _ = await asyncio.wait(
                        {inbound, outbound, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if done:
                        break
                    continue  # activity moved the idle deadline, or it passed: check again
                now = loop.time()
                if now >= started + self.policy.max_lifetime_s:
                    self.close(LIFETIME)
                    break
                if now >= self.last_activity + self.policy.idle_timeout_s:
                    self.close(IDLE)
                    break
        finally:
            code, message = self.reason or self._closed_by(client, upstream, inbound)
            for task in (ended, inbound, outbound):
                task.cancel()
            await asyncio.gather(inbound, outbound, ended, return_exceptions=True)
            await asyncio.gather(
                _close(client, code, message), _close(upstream, code, message), return_exceptions=True
            )

    def _closed_by(
        self, client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse, inbound: asyncio.Task[None]
    ) -> tuple[int, str]:
        """The close a side sent, to pass on to the other."""
        side = client if inbound.done() else upstream
        code = side.close_code
        if code is None or code in (WSCloseCode.ABNORMAL_CLOSURE, 1005, 1015):
            return WSCloseCode.OK, ""
        return int(code), ""

    async def _pump(
        self,
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        *,
        inbound: bool,
    ) -> None:
        ctx = self.ctx
        while True:
            message = await source.receive()
            kind = message.type
            if kind is WSMsgType.TEXT:
                data: str = message.data
                size = len(data.encode())
                await sink.send_str(data)
            elif kind is WSMsgType.BINARY:
                size = len(message.data)
                await sink.send_bytes(message.data)
            elif kind is WSMsgType.PING or kind is WSMsgType.PONG:
                size = 0  # answered by aiohttp on each side (autoping)
            else:  # CLOSE, CLOSING, CLOSED, ERROR (a message over max_message_bytes among them)
                if kind is WSMsgType.ERROR and self.reason is None:
                    error = message.data
                    if isinstance(error, aiohttp.WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG:
                        self.reason = (WSCloseCode.MESSAGE_TOO_BIG, "message too big")
                return
            if inbound:
                ctx.bytes_in += size
            else:
                ctx.bytes_out += size
            self.last_activity = self.loop.time()


async def _close(socket: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, code: int, message: str) -> None:
    if not socket.closed:
        await socket.close(code=code, message=message.encode())
