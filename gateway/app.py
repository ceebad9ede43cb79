"""One gateway worker: the HTTP server, routing, the pipeline and the built-in endpoints.

Server: aiohttp's low-level ``web_server.Server`` on uvloop, one per worker
process, each with its own SO_REUSEPORT socket so the kernel spreads
connections. The low-level server skips aiohttp's router and middleware
machinery, which we do not need: routing is one split and one dict lookup.

Request order: built-ins -> readiness -> 431 (header size) -> route (404/410 via
lifecycle) -> 405 (method not in the version's list; CORS preflights excepted) ->
413 (declared body size) -> access phase -> response phase -> proxy -> log phase.
431, 405 and 413 are decided before any upstream connection.

Parser-level refusals (both Content-Length and Transfer-Encoding, duplicate
Content-Length, bad chunking, oversized header lines) come from aiohttp's llhttp
parser as 400 (431 for header lines) with the connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from gateway import contract, metrics
from gateway.config import GatewayConfig
from gateway.exceptions import PROBLEM_BASE, Answer, Reject
from gateway.pipeline import PolicyDeps
from gateway.policies import registry
from gateway.proxy import Proxy
from gateway.state import RedisHealth, State, new_redis
from gateway.types import RequestContext

log = logging.getLogger("gateway")

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_HEADERS = 200
METERING_REDIS_TIMEOUT_S = 1.0
LINGERING_S = 2.0


def problem_response(
    status: int, problem: str, title: str, *, detail: str | None = None, request_id: str = ""
) -> web.Response:
    body: dict[str, Any] = {"type": PROBLEM_BASE + problem, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    response = web.Response(status=status, body=orjson.dumps(body))
    response.headers["Content-Type"] = PROBLEM_TYPE
    return response


class GatewayRequestHandler(RequestHandler):
    """aiohttp's connection protocol plus a header timeout against slowloris: once the
    first byte of a request head arrives, the whole head must follow within
    ``header_timeout`` or the connection is closed. (Idle keep-alive connections are
    bounded separately by keepalive_timeout.)"""

    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.awaiting_head = True
        self.head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self.awaiting_head and self.head_timer is None:
            self.head_timer = self._loop.call_later(self.header_timeout, self._head_timed_out)
        super().data_received(data)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.awaiting_head and self.transport is not None:
            metrics.UPSTREAM_ERRORS.labels("client_header_timeout").inc()
            self.force_close()
            self.transport.close()

    def head_received(self) -> None:
        self.awaiting_head = False
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def request_done(self) -> None:
        self.awaiting_head = True

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # Malformed requests (smuggling attempts among them) end here: answer with a
        # problem document and close, since we cannot know where the next request starts.
        if request.writer.output_size > 0:
            raise ConnectionError("response already started, cannot send an error")
        if status == 500:
            log.error("error handling request", exc_info=exc)
        if isinstance(exc, LineTooLong):
            status, problem, title = 431, "header-too-large", "Request header fields too large"
        elif status == 400:
            problem, title = "bad-request", "Malformed request"
        else:
            problem, title = "internal-error", "Internal error"
        metrics.count_request("", "", status, 0.0)
        response = problem_response(status, problem, title)
        response.force_close()
        return response


class GatewayServer(Server):
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        handler = GatewayRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.header_timeout = self.header_timeout
        return handler


class Gateway:
    def __init__(self, config: GatewayConfig, *, worker_index: int = 0) -> None:
        self.config = config
        self.worker_index = worker_index
        self.health = RedisHealth()
        self.redis = new_redis(config)
        # Metering writes go down their own connection, with a longer timeout: a batch of
        # XADDs must not queue in front of a limiter call, and a slow metering write
        # must not flip the request path into its Redis-down mode.
        self.metering_redis = new_redis(config, timeout=METERING_REDIS_TIMEOUT_S)
        self.state = State(config, self.redis, self.health)
        self.state.snapshot_writer = worker_index == 0
        self.proxy = Proxy(config, registry.credentials(config))
        deps = PolicyDeps(config, self.state, self.redis, self.health, self.metering_redis, worker_index)
        self.pipeline = registry.build_pipeline(deps)

    async def start(self) -> None:
        await self.proxy.start()
        await self.state.start()
        for policy in self.pipeline.policies:
            await policy.start()

    async def stop(self) -> None:
        for policy in self.pipeline.policies:
            await policy.stop()
        await self.state.stop()
        await self.proxy.stop()
        await self.redis.close()
        await self.metering_redis.close()

    # --- request handling ---------------------------------------------------------------

    async def handle(self, request: BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        if isinstance(protocol, GatewayRequestHandler):
            protocol.head_received()
        try:
            raw_path = request.raw_path
            if raw_path.startswith("/_tollway/"):
                return self.builtin(request, raw_path.partition("?")[0])
            return await self.handle_api(request, raw_path)
        finally:
            if isinstance(protocol, GatewayRequestHandler):
                protocol.request_done()

    def builtin(self, request: BaseRequest, path: str) -> web.Response:
        if path == "/_tollway/health":
            return web.Response(body=b'{"status":"ok"}', content_type="application/json")
        if path == "/_tollway/ready":
            if self.state.ready:
                return web.Response(body=b'{"status":"ready"}', content_type="application/json")
            response = problem_response(503, "not-ready", "Configuration not loaded yet")
            response.headers["Retry-After"] = "1"
            return response
        if path == "/_tollway/metrics":
            return web.Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})
        return problem_response(404, "unknown-endpoint", "Unknown built-in endpoint")

    async def handle_api(self, request: BaseRequest, raw_path: str) -> web.StreamResponse:
        event_id = os.urandom(16).hex()
        incoming_id = request.headers.get("X-Request-ID")
        request_id = incoming_id if incoming_id and REQUEST_ID_RE.match(incoming_id) else event_id
        ctx = RequestContext(request=request, request_id=request_id, event_id=event_id)
        responded = False
        response: web.StreamResponse | None = None
        try:
            try:
                self.admit(ctx, raw_path)
                await self.pipeline.access(ctx)
                if request.headers.get("Expect", "").lower() == "100-continue" and request.body_exists:
                    # Only now, with the caller admitted, invite the body (RFC 9110 §10.1.1);
                    # a refused client never sends it.
                    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.pipeline.response(ctx)
                responded = True
                response = await self.proxy.forward(ctx)
            except Reject as reject:
                ctx.decision = reject.decision
                if not responded:
                    self.pipeline.response(ctx)
                response = self.reject_response(ctx, reject)
                await response.prepare(request)
                await response.write_eof()
                if (
                    request.headers.get("Expect", "").lower() == "100-continue"
                    and request.body_exists
                    and not request.content.at_eof()
                ):
                    # The client waits for our 100 before sending the body, so there is
                    # nothing to drain: close now rather than linger for a body that never comes.
                    request.protocol.force_close()
            except (ConnectionResetError, asyncio.CancelledError):
                ctx.status = 499  # the client went away; nginx's code for it
                raise
            except Exception:
                # The path only: the query may carry ?api_key=.
                log.exception("unhandled error on %s %s", request.method, raw_path.partition("?")[0])
                ctx.decision = "upstream_error"
                response = problem_response(500, "internal-error", "Internal error", request_id=request_id)
                response.force_close()
            if ctx.status == 0:
                ctx.status = response.status
            return response
        finally:
            self.pipeline.log(ctx)
            metrics.count_request(
                ctx.api_slug if ctx.route else "", ctx.version if ctx.route else "", ctx.status, ctx_elapsed(ctx)
            )

    def admit(self, ctx: RequestContext, raw_path: str) -> None:
        """Everything decided from the request head alone, before any policy or upstream."""
        request = ctx.request
        if not self.state.ready:
            raise Reject(
                503, "not-ready", "Gateway not ready", decision="redis_unavailable", headers={"Retry-After": "1"}
            )
        size = 0
        for name, value in request.raw_headers:
            size += len(name) + len(value) + 4
        if size > self.config.max_header_bytes:
            raise Reject(
                431,
                "header-too-large",
                "Request header fields too large",
                decision="bad_request",
                detail=f"Headers may total at most {self.config.max_header_bytes} bytes.",
                close=True,
            )
        path = raw_path.partition("?")[0]
        parts = path.split("/", 3)
        api_slug = parts[1] if len(parts) > 1 else ""
        version = parts[2] if len(parts) > 2 else ""
        ctx.api_slug, ctx.version = api_slug, version
        ctx.upstream_path = "/" + parts[3] if len(parts) > 3 else "/"
        route = self.state.route(api_slug, version)
        if route is None:
            if api_slug and self.state.api_known(api_slug):
                raise Reject(
                    404, "unknown-version", "Unknown API version", decision="not_found",
                    detail=f"{api_slug} has no version {version!r}.",
                )
            raise Reject(404, "unknown-api", "Unknown API", decision="not_found")
        ctx.route = route
        method = request.method
        if (method not in route.allowed_methods or method in contract.NEVER_ALLOWED_METHODS) and not (
            is_cors_preflight(request)
        ):
            allow = ", ".join(m for m in route.allowed_methods if m not in contract.NEVER_ALLOWED_METHODS)
            raise Reject(
                405,
                "method-not-allowed",
                "Method not allowed",
                decision="bad_request",
                detail=f"{route.api_slug} {route.version} accepts {allow}.",
                headers={"Allow": allow},
            )
        length = request.content_length
        if length is not None and length > route.max_body_bytes:
            raise Reject(
                413,
                "body-too-large",
                "Request body too large",
                decision="bad_request",
                detail=f"This API version accepts bodies up to {route.max_body_bytes} bytes.",
                close=True,
            )

    def reject_response(self, ctx: RequestContext, reject: Reject) -> web.Response:
        if isinstance(reject, Answer):
            response = web.Response(status=reject.status)
        else:
            response = problem_response(
                reject.status, reject.problem, reject.title, detail=reject.detail, request_id=ctx.request_id
            )
        headers = response.headers
        for name, value in ctx.response_headers:
            headers.add(name, value)
        for name, value in reject.headers.items():
            headers[name] = value
        headers["X-Request-ID"] = ctx.request_id
        # An unread body would have to be drained before the next request on this
        # connection; for a refusal it is cheaper and safer to close.
        if reject.close or (ctx.request.body_exists and not ctx.request.content.at_eof()):
            response.force_close()
        ctx.status = reject.status
        return response


def is_cors_preflight(request: BaseRequest) -> bool:
    """A browser's CORS preflight: the cors policy answers it, whatever the method list says."""
    headers = request.headers
    return request.method == "OPTIONS" and "Origin" in headers and "Access-Control-Request-Method" in headers


def ctx_elapsed(ctx: RequestContext) -> float:
    return time.perf_counter() - ctx.started


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Every worker binds the same port; the kernel balances new connections between them.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(config: GatewayConfig, *, worker_index: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    gateway = Gateway(config, worker_index=worker_index)
    await gateway.start()
    server = GatewayServer(
        gateway.handle,
        loop=loop,
        header_timeout=config.header_timeout_s,
        keepalive_timeout=config.idle_timeout_s,
        # Single header lines may be as long as the whole header budget; the total is
        # checked in admit(), anything longer is refused by the parser with 431.
        max_line_size=config.max_header_bytes,
        max_field_size=config.max_header_bytes,
        max_headers=MAX_HEADERS,
        auto_decompress=False,
        access_log=None,
        # How long an unread request body (after a refusal) is drained before closing;
        # aiohttp's 10 s default lets a refused upload hold a connection too long.
        lingering_time=LINGERING_S,
    )
    sock = listening_socket(config.host, config.port)
    listener = await loop.create_server(server, sock=sock)
    log.info("worker %d listening on %s:%d", worker_index, config.host, config.port)
    try:
        await stop.wait()
    finally:
        listener.close()
        await server.shutdown(5.0)
        await gateway.stop()
