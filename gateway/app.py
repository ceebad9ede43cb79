"""One gateway worker: the HTTP server, routing, the pipeline and the built-in endpoints.

Server: aiohttp's low-level ``web_server.Server`` on uvloop, one per worker
process, each with its own SO_REUSEPORT socket so the kernel spreads
connections. The low-level server skips aiohttp's router and middleware
machinery, which we do not need: routing is one split and one dict lookup.

Request order: 505 (HTTP version) -> built-ins -> readiness -> 431 (header size) ->
405 (CONNECT) -> request target (absolute-form, dot segments: 400, gateway/edge.py) ->
route (404/410 via lifecycle) -> 405 (method not in the version's list; CORS
preflights excepted) -> 400 (ambiguous credentials) -> 413
(declared body size) -> access phase -> admit phase (metering journals the admission)
-> response phase -> proxy -> log phase.
Everything up to 413 is decided before any upstream connection.

Parser-level refusals (both Content-Length and Transfer-Encoding, duplicate
Content-Length, bad chunking, oversized lines) come from aiohttp's llhttp parser
and are answered here with the connection closed: 400, 414 for a request-target
over GATEWAY_MAX_URI_BYTES, 431 for a header line, 505 for an HTTP version llhttp
does not know.

Timeouts on the client side: a new connection must send its first byte within
GATEWAY_FIRST_BYTE_TIMEOUT_S, a request head must be complete GATEWAY_HEADER_TIMEOUT_S
after its first byte, an idle keep-alive connection closes after
GATEWAY_IDLE_TIMEOUT_S, and a request body must keep up GATEWAY_BODY_MIN_RATE_BPS
after a GATEWAY_BODY_TIMEOUT_S grace (``BodyWatchdog``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import BadStatusLine, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from gateway import edge, metrics, tasks
from gateway.config import GatewayConfig
from gateway.exceptions import PROBLEM_BASE, Answer, Reject
from gateway.fleet import Fleet
from gateway.pipeline import PolicyDeps
from gateway.policies import registry
from gateway.proxy import BodyTooSlow, Proxy
from gateway.responses import Response
from gateway.state import RedisHealth, State, new_redis
from gateway.types import RequestContext

log = logging.getLogger("gateway")

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_HEADERS = 200
METERING_REDIS_TIMEOUT_S = 1.0
LINGERING_S = 2.0


def problem_response(
    status: int, problem: str, title: str, *, detail: str | None = None, request_id: str = "",
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {**(extra or {}), "type": PROBLEM_BASE + problem, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    response = Response(status=status, body=orjson.dumps(body))
    response.headers["Content-Type"] = PROBLEM_TYPE
    return response


class BodyWatchdog:
    """A minimum rate for a request body, in the manner of Apache's mod_reqtimeout: ``t``
    seconds after the body is invited, at least ``(t - grace) * rate`` bytes must have
    arrived, or the body stream fails with BodyTooSlow (the proxy answers 408 and closes).

    One timer per request with a body, rescheduled to the next moment the rule could
    fail, so a body that flows costs a handful of callbacks. Time during which received
    bytes wait for us (a slow upstream holding us back) is not held against the client.
    """

    __slots__ = ("checked", "content", "ctx", "grace", "loop", "rate", "started", "timer")

    def __init__(self, ctx: RequestContext, content: StreamReader, grace: float, rate: int) -> None:
        self.ctx = ctx
        self.content = content
        self.grace = grace
        self.rate = rate
        self.loop = asyncio.get_running_loop()
        self.started = self.checked = self.loop.time()
        self.timer = self.loop.call_later(grace, self.check)

    def check(self) -> None:
        content = self.content
        if content.is_eof() or content.exception() is not None:
            return
        now = self.loop.time()
        if content.total_bytes > self.ctx.bytes_in:
            self.started += now - self.checked  # the bytes wait on us, not on the client
        self.checked = now
        deadline = self.started + self.grace + content.total_bytes / self.rate
        if now >= deadline:
            metrics.UPSTREAM_ERRORS.labels("client_body_timeout").inc()
            content.set_exception(BodyTooSlow())
        else:
            self.timer = self.loop.call_at(deadline, self.check)

    def cancel(self) -> None:
        self.timer.cancel()


class GatewayRequestHandler(RequestHandler):
    """aiohttp's connection protocol plus two timeouts against slowloris: a new connection
    must send its first byte within ``first_byte_timeout``, and once the first byte of a
    request head arrives, the whole head must follow within ``header_timeout``, or the
    connection is closed. (Idle keep-alive connections are bounded by keepalive_timeout.)
    The head timer is armed once per connection, not per request: a head in progress only
    records when it started, and the timer, when it fires, closes the connection if that
    head has taken the whole timeout, else re-arms for the head now in progress (a
    ``call_later`` and a ``cancel`` per request were a measurable share of a request's CPU).

    It also carries what the worker's responses need from the config: the ``Server``
    header (gateway/responses.py) and the URI limit that tells 414 from 431."""

    header_timeout = 10.0
    first_byte_timeout = 10.0
    server_header = ""
    max_uri_bytes = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.awaiting_head = True
        self.head_started: float | None = None  # loop time the head in progress began
        self.head_timer: asyncio.TimerHandle | None = None
        self.first_byte_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.first_byte_timer = self._loop.call_later(self.first_byte_timeout, self._silent)

    def _silent(self) -> None:
        self.first_byte_timer = None
        if self.transport is not None:
            metrics.UPSTREAM_ERRORS.labels("client_first_byte_timeout").inc()
            self.force_close()
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.first_byte_timer is not None:
            self.first_byte_timer.cancel()
            self.first_byte_timer = None
        if self.awaiting_head and self.head_started is None:
            self.head_started = self._loop.time()
            if self.head_timer is None:
                self.head_timer = self._loop.call_at(self.head_started + self.header_timeout, self._head_timed_out)
        super().data_received(data)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        started = self.head_started
        if started is None or not self.awaiting_head or self.transport is None:
            return  # no head in progress: the next one's first byte arms the timer again
        deadline = started + self.header_timeout
        if self._loop.time() + 0.001 < deadline:  # a later head than the one this timer was for
            self.head_timer = self._loop.call_at(deadline, self._head_timed_out)
            return
        metrics.UPSTREAM_ERRORS.labels("client_header_timeout").inc()
        self.force_close()
        self.transport.close()

    def head_received(self) -> None:
        self.awaiting_head = False
        self.head_started = None

    def request_done(self) -> None:
        self.awaiting_head = True

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.first_byte_timer is not None:
            self.first_byte_timer.cancel()
            self.first_byte_timer = None
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
            # llhttp reports the request-target and a header line alike; the limit it names
            # tells them apart (the URI limit is kept below the header one, gateway/config.py).
            if str(exc.args[1]) == str(self.max_uri_bytes):
                status, problem, title = 414, "uri-too-long", "Request-target too long"
            else:
                status, problem, title = 431, "header-too-large", "Request header fields too large"
        elif isinstance(exc, BadStatusLine) and "Invalid HTTP version" in str(exc):
            # HTTP/1.2, HTTP/2.1, ...: a well-formed version llhttp does not speak.
            status, problem, title = 505, "http-version-not-supported", "HTTP version not supported"
        elif status == 400:
            problem, title = "bad-request", "Malformed request"
        else:
            problem, title = "internal-error", "Internal error"
        metrics.count_request("", "", status, 0.0)
        response = problem_response(status, problem, title)
        response.force_close()
        return response


class GatewayServer(Server):
    def __init__(self, *args: Any, config: GatewayConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config

    def __call__(self) -> RequestHandler:
        config = self.config
        handler = GatewayRequestHandler(self, loop=self._loop, **self._kwargs)
        handler.header_timeout = config.header_timeout_s
        handler.first_byte_timeout = config.first_byte_timeout_s
        handler.server_header = config.server_header
        handler.max_uri_bytes = config.max_uri_bytes
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
        self.state.worker_index = worker_index  # each worker snapshots its own cache
        self.credentials = registry.credentials(config)
        self.public_hosts = edge.public_hosts(config.public_hosts)
        self.proxy = Proxy(config, self.credentials)
        self.fleet = Fleet(config, self.metering_redis)
        deps = PolicyDeps(
            config, self.state, self.redis, self.health, self.metering_redis, worker_index, fleet=self.fleet
        )
        self.pipeline = registry.build_pipeline(deps)

    async def start(self) -> None:
        # The health checker reads the live route table and publishes into Redis.
        await self.proxy.start(routes=lambda: self.state.routes.values(), redis=self.metering_redis)
        await self.state.start()
        self.fleet.start()
        for policy in self.pipeline.policies:
            await policy.start()

    async def stop(self) -> None:
        for policy in self.pipeline.policies:
            await policy.stop()
        await self.fleet.stop()
        await self.state.stop()
        await self.proxy.stop()
        await self.redis.close()
        await self.metering_redis.close()

    # --- request handling ---------------------------------------------------------------

    async def handle(self, request: BaseRequest) -> web.StreamResponse:
        protocol = request.protocol
        handler = protocol if isinstance(protocol, GatewayRequestHandler) else None
        if handler is not None:
            handler.head_received()
        try:
            version = request.version
            if version != HttpVersion11 and version != HttpVersion10:
                return self.unsupported_version(request)
            raw_path = request.raw_path
            if raw_path.startswith("/_tollway/"):
                return self.builtin(request, raw_path.partition("?")[0])
            return await self.handle_api(request, raw_path)
        finally:
            if handler is not None:
                handler.request_done()

    def unsupported_version(self, request: BaseRequest) -> web.Response:
        """505 for HTTP/2.0 or HTTP/0.9 spoken on an HTTP/1 connection (llhttp parses both).
        The answer itself is HTTP/1.1, which is what this server speaks."""
        # aiohttp writes the status line in the request's version (a reified property).
        request._cache["version"] = HttpVersion11
        metrics.count_request("", "", 505, 0.0)
        response = problem_response(
            505, "http-version-not-supported", "HTTP version not supported",
            detail="This gateway speaks HTTP/1.0 and HTTP/1.1.",
        )
        response.force_close()
        return response

    def builtin(self, request: BaseRequest, path: str) -> web.Response:
        if path == "/_tollway/health":
            return Response(body=b'{"status":"ok"}', content_type="application/json")
        if path == "/_tollway/ready":
            if self.state.unreadable is not None:
                response = problem_response(
                    503, "state-unreadable", "Redis answers but the gateway cannot read its state",
                    detail=self.state.unreadable,
                )
                response.headers["Retry-After"] = "1"
                return response
            task, down_s = tasks.longest_down()
            if self.state.ready and down_s <= tasks.READY_DOWN_S:
                return Response(body=b'{"status":"ready"}', content_type="application/json")
            if self.state.ready:
                response = problem_response(
                    503, "not-ready", "A background task is down",
                    detail=f"{task} has been down for {down_s:.0f} s; it is being restarted.",
                )
            else:
                response = problem_response(503, "not-ready", "Configuration not loaded yet")
            response.headers["Retry-After"] = "1"
            return response
        if path == "/_tollway/metrics":
            return Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})
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
                self.pipeline.admit(ctx)
                if request.body_exists and request.headers.get("Expect", "").lower() == "100-continue":
                    # Only now, with the caller admitted, invite the body (RFC 9110 §10.1.1);
                    # a refused client never sends it.
                    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.pipeline.response(ctx)
                responded = True
                watchdog = (
                    BodyWatchdog(ctx, request.content, self.config.body_timeout_s, self.config.body_min_rate_bps)
                    if self.config.body_min_rate_bps and request.body_exists
                    else None
                )
                try:
                    response = await self.proxy.forward(ctx)
                finally:
                    if watchdog is not None:
                        watchdog.cancel()
            except Reject as reject:
                ctx.decision = reject.decision
                if not responded:
                    self.pipeline.response(ctx)
                response = self.reject_response(ctx, reject)
                await response.prepare(request)
                await response.write_eof()
                if (
                    request.body_exists
                    and not request.content.at_eof()
                    and request.headers.get("Expect", "").lower() == "100-continue"
                ):
                    # The client waits for our 100 before sending the body, so there is
                    # nothing to drain: close now rather than linger for a body that never comes.
                    request.protocol.force_close()
            except asyncio.CancelledError:
                ctx.status = 499  # the client went away; nginx's code for it
                raise
            except ConnectionResetError:
                # The client hung up before its body was in (gateway/proxy.py ClientGone). Nothing
                # to log as an error: the 499 is counted, and aiohttp drops the answer quietly.
                ctx.status = 499
                response = web.Response(status=499)
                response.force_close()
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
        method = request.method
        if method == "CONNECT":  # its target is host:port, not a path: nothing to route
            raise edge.method_not_allowed(edge.allowed_methods(None))
        if raw_path[:1] == "/":
            path, _, ctx.query = raw_path.partition("?")
            ctx.host = request.headers.get("Host", "")
        else:
            origin, ctx.host = edge.origin_target(raw_path, request.headers.get("Host"), self.public_hosts)
            path, _, ctx.query = origin.partition("?")
        api_slug, version, ctx.upstream_path = edge.split_path(path)
        ctx.api_slug, ctx.version = api_slug, version
        route = self.state.route(api_slug, version)
        if route is None:
            if api_slug and self.state.api_known(api_slug):
                raise Reject(
                    404, "unknown-version", "Unknown API version", decision="not_found",
                    detail=f"{api_slug} has no version {version!r}.",
                )
            raise Reject(404, "unknown-api", "Unknown API", decision="not_found")
        ctx.route = route
        methods = edge.allowed_methods(route)
        if not edge.method_allowed(method, methods) and not edge.is_cors_preflight(request):
            raise edge.method_not_allowed(methods)
        query = request.query if route.allow_query_key else None
        if edge.count_credentials(request.headers, self.credentials, query) > 1:
            raise edge.ambiguous_credentials()
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
            response: web.Response = Response(status=reject.status)
        else:
            response = problem_response(
                reject.status, reject.problem, reject.title, detail=reject.detail, request_id=ctx.request_id,
                extra=reject.extra,
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
        config=config,
        keepalive_timeout=config.idle_timeout_s,
        # The request-target may be max_uri_bytes long (longer: 414). Single header lines
        # may be as long as the whole header budget; the total is checked in admit(),
        # anything longer is refused by the parser with 431.
        max_line_size=config.max_uri_bytes,
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
