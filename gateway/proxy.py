"""Forwarding to the upstream: header hygiene, weighted balancing, retries, circuit
breakers, timeouts, and bodies streamed both ways. A version's ``upstream_health``
policy overrides the retries and breaker settings, and its health checks
(gateway/upstream_health.py) take targets out of the rotation.

Transport: gateway/upstream.py, a lean HTTP/1.1 client (one asyncio protocol per
connection, httptools for responses, a per-worker pool with keep-alive, timeouts from
one per-worker sweep rather than per-request timers). aiohttp's ClientSession, which
it replaced on the request path (it cost about two thirds of a plain proxy's CPU per
request, docs/performance.md), stays for websockets and the active health checks.
(Measured: httpx's AsyncClient is ~25x slower as a proxy client on this kind of box.)

Bodies are not read whole: the request body goes upstream as it arrives and the
response comes back chunk by chunk, except small ones with a known length (request
bodies up to SMALL_REQUEST, responses up to SMALL_RESPONSE), which are read whole
and sent in one write: cheaper (measured, docs/performance.md), and small by
definition. A request body that request_validation checks is read whole too.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from urllib.parse import unquote_plus

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway import contract, metrics
from gateway.config import GatewayConfig
from gateway.exceptions import Reject
from gateway.pipeline import Credentials
from gateway.redis_mux import RedisHandle
from gateway.responses import Response, StreamResponse
from gateway.route_policies import HOP_BY_HOP_HEADERS as HOP_BY_HOP
from gateway.types import RequestContext
from gateway.upstream import (
    BadResponse,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    Origin,
    RequestHead,
    SendFailed,
    Timeouts,
    UpstreamClient,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
from gateway.upstream_health import HealthChecks, TargetHealth

# Set by us from what we saw, never taken from an untrusted client.
FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
SMALL_RESPONSE = 64 * 1024
SMALL_REQUEST = 64 * 1024


class BodyTooLarge(Exception):
    pass


class ResponseTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    """Set on the request's body stream by the body-rate watchdog (gateway/app.py)."""


class ClientGone(ConnectionResetError):
    """The client's connection broke while its body was being read (or relayed upstream):
    the client's doing, never counted against the upstream's circuit breaker or health."""


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown`` one trial
    request is let through (half-open) and its outcome closes or re-opens it."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.open_until = 0.0

    def allows(self, now: float) -> bool:
        if self.failures < self.threshold:
            return True
        if now >= self.open_until:
            self.open_until = now + self.cooldown  # one trial per cooldown
            return True
        return False

    def success(self) -> None:
        self.failures = 0

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + self.cooldown


class Target:
    __slots__ = ("base", "base_path", "breaker", "current", "health", "origin", "url", "weight")

    def __init__(
        self, upstream: contract.Upstream, breaker: CircuitBreaker, health: TargetHealth | None = None
    ) -> None:
        self.url = upstream.url.rstrip("/")
        parsed = URL(self.url)
        self.base = f"{parsed.scheme}://{parsed.raw_authority}"
        self.base_path = parsed.raw_path.rstrip("/")
        # The Host header as aiohttp sent it: the port only when it is not the scheme's default.
        host_header = parsed.host_port_subcomponent or ""
        self.origin = Origin(parsed.scheme, parsed.raw_host or "", parsed.port or 80, host_header)
        self.weight = max(1, upstream.weight)
        self.current = 0
        self.breaker = breaker
        self.health = health

    def failed(self, now: float, reason: str) -> None:
        self.breaker.failure(now)
        if self.health is not None:
            self.health.passive_failed(now, reason)

    def url_for(self, path: str, query: str) -> URL:
        raw = f"{self.base}{self.base_path}{path}"
        if query:
            raw += "?" + query
        return URL(raw, encoded=True)

    def target_for(self, path: str, query: str) -> str:
        """The request target (origin form) for ``path`` and the raw ``query``."""
        target = f"{self.base_path}{path}" or "/"
        return f"{target}?{query}" if query else target


class Balancer:
    """Smooth weighted round robin (as nginx does it), skipping open circuits and, for a
    version with upstream_health, the targets its checks took out of the rotation."""

    def __init__(self, targets: list[Target], retries: int, breaker_cooldown_s: float) -> None:
        self.targets = targets
        self.total = sum(t.weight for t in targets)
        self.checked = any(t.health is not None for t in targets)
        self.retries = retries
        self.breaker_cooldown_s = breaker_cooldown_s

    def healthy(self, now: float) -> list[Target]:
        return [t for t in self.targets if t.health is None or t.health.available(now)]

    def order(self, now: float) -> list[Target]:
        targets = self.targets
        total = self.total
        if self.checked:
            targets = self.healthy(now)
            total = sum(t.weight for t in targets)
        if len(targets) <= 1:
            return targets if targets and targets[0].breaker.allows(now) else []
        best = None
        for t in targets:
            t.current += t.weight
            if best is None or t.current > best.current:
                best = t
        assert best is not None
        best.current -= total
        rest = sorted((t for t in targets if t is not best), key=lambda t: -t.current)
        return [t for t in [best, *rest] if t.breaker.allows(now)]


def strip_query_params(query: str, names: tuple[str, ...]) -> str:
    """Remove every parameter named in ``names`` (lower-case) from a raw query string.

    Names are compared percent-decoded (``?api%5Fkey=`` authenticates just like
    ``?api_key=``) and case-insensitively: ``?API_KEY=`` does not authenticate, but an
    upstream that reads parameters case-insensitively would take it for a key, so it
    is kept from the upstream too. Other names (``apikey``) are the upstream's own."""
    if not query:
        return query
    if "%" not in query:
        lowered = query.lower()
        for name in names:
            if name in lowered:
                break
        else:
            return query  # the usual case, decided without splitting
    kept = []
    for part in query.split("&"):
        raw_name = part.partition("=")[0]
        name = unquote_plus(raw_name, errors="replace") if "%" in raw_name else raw_name
        if name.lower() in names:
            continue
        kept.append(part)
    return "&".join(kept)


class Proxy:
    def __init__(self, config: GatewayConfig, credentials: Credentials) -> None:
        """``credentials``: what the auth policies read a credential from (the registry
        collects them), never forwarded upstream."""
        self.config = config
        self.credential_headers = credentials.headers
        self.strip_bearer = credentials.bearer
        # Never passed through from the client: hop-by-hop, forwarding (ours replace them),
        # Host (the upstream's), Expect (answered by us; the body is already on its way),
        # credentials, X-Request-ID (ours); X-Tollway-* too, by prefix.
        self.never_forwarded = HOP_BY_HOP | FORWARDING | {"host", "expect", "x-request-id"} | credentials.headers
        self.credential_query_params = tuple(name.lower() for name in credentials.query_params)
        self.session: aiohttp.ClientSession | None = None  # websockets and health checks
        self.client: UpstreamClient | None = None  # everything else
        self.balancers: dict[tuple[object, ...], Balancer] = {}
        self.breakers: dict[tuple[str, int, float], CircuitBreaker] = {}
        self.health = HealthChecks(config)
        self.health_generation = 0
        self.timeouts: dict[tuple[float, float, float], Timeouts] = {}
        self.trusted = config.trusted_proxies

    async def start(
        self, routes: Callable[[], Iterable[contract.RouteRecord]] | None = None, redis: RedisHandle | None = None
    ) -> None:
        """``routes``: the published routes, for the health checker (none: no active checks);
        ``redis``: where the checker publishes this node's view of its targets."""
        # Bounded per upstream (the pool is keyed by scheme, host and port): a burst of
        # clients queues for a pooled connection instead of opening one upstream
        # connection each, and idle ones are closed after GATEWAY_UPSTREAM_IDLE_S.
        self.client = UpstreamClient(self.config.upstream_max_connections, self.config.upstream_idle_s)
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self.config.upstream_max_connections,
            keepalive_timeout=self.config.upstream_idle_s,
            ttl_dns_cache=60,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        if routes is not None:
            self.health.start(routes, redis, self.session)

    async def stop(self) -> None:
        await self.health.stop()
        if self.client is not None:
            await self.client.close()
        if self.session is not None:
            await self.session.close()

    def balancer(self, route: contract.RouteRecord) -> Balancer:
        health = route.policies.upstream_health
        if self.health.generation != self.health_generation:
            self.balancers.clear()  # one holds a TargetHealth the checker dropped
            self.health_generation = self.health.generation
        key = (route.version_id, route.upstreams, health)
        balancer = self.balancers.get(key)
        if balancer is None:
            config = self.config
            retries, failures, cooldown = config.retries, config.breaker_failures, config.breaker_cooldown_s
            if health is not None:
                retries = config.retries if health.retries is None else health.retries
                failures = failures if health.breaker_failures is None else health.breaker_failures
                cooldown = cooldown if health.breaker_cooldown_s is None else health.breaker_cooldown_s
            targets = []
            for upstream in route.upstreams:
                # Shared by every version that sends to this URL with the same settings.
                breaker_key = (upstream.url, failures, cooldown)
                breaker = self.breakers.get(breaker_key)
                if breaker is None:
                    breaker = self.breakers[breaker_key] = CircuitBreaker(failures, cooldown)
                target_health = self.health.target(route, upstream.url.rstrip("/"))
                targets.append(Target(upstream, breaker, target_health))
            balancer = self.balancers[key] = Balancer(targets, retries, cooldown)
        return balancer

    def timeout(self, route: contract.RouteRecord) -> Timeouts:
        key = (route.connect_timeout_s, route.read_timeout_s, route.total_timeout_s)
        timeout = self.timeouts.get(key)
        if timeout is None:
            timeout = self.timeouts[key] = Timeouts(
                route.connect_timeout_s or 0.0, route.read_timeout_s or 0.0, route.total_timeout_s or 0.0
            )
        return timeout

    def peer_trusted(self, peer: str | None) -> bool:
        if not self.trusted or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def request_headers(self, ctx: RequestContext) -> CIMultiDict[str]:
        """The headers sent upstream, with the transform policy's edits applied."""
        out: CIMultiDict[str] = CIMultiDict(self._header_pairs(ctx)[0])
        if ctx.request_edit is not None:
            ctx.request_edit.apply(out)  # never one of the headers above: the portal refuses those
        return out

    def request_head(self, ctx: RequestContext) -> RequestHead:
        """request_headers rendered as the upstream client sends them, without the
        multidict in between when no transform edits them."""
        if ctx.request_edit is not None:
            return RequestHead.of(self.request_headers(ctx))
        return RequestHead(*self._header_pairs(ctx))

    def _header_pairs(self, ctx: RequestContext) -> tuple[list[tuple[str, str]], bool]:
        """The headers sent upstream before any transform edit, in order, and whether
        Content-Length is among them. No name repeats outside the client's own headers:
        the ones added here are never passed through from the client (X-Tollway-* among
        them; the upstream_headers policy names each once), so appending them is setting them."""
        request = ctx.request
        incoming = request.headers
        connection = incoming.get("Connection")
        named = {t.strip().lower() for t in connection.split(",")} if connection else set()
        out: list[tuple[str, str]] = []
        has_length = False
        dropped = self.never_forwarded
        strip_bearer = self.strip_bearer
        for name, value in incoming.items():
            lower = name.lower()
            if lower in dropped or lower in named or lower.startswith("x-tollway-"):
                continue
            if lower == "authorization" and strip_bearer and value[:7].lower() == "bearer ":
                continue  # our credential scheme; anything else (Basic, ...) is the upstream's business
            if lower == "content-length":
                has_length = True
            out.append((name, value))
        transport = request.transport
        peername = transport.get_extra_info("peername") if transport is not None else None
        peer = peername[0] if peername else None
        # Never an empty forwarding header: a value we do not know is left out, not blank
        # (HTTP/1.0 may come without Host; a Unix socket has no peer address).
        if self.peer_trusted(peer):
            prior = incoming.get("X-Forwarded-For")
            forwarded_for = f"{prior}, {peer}" if prior else peer
            proto = incoming.get("X-Forwarded-Proto") or str(request.scheme)
            host = incoming.get("X-Forwarded-Host") or ctx.host
            forwarded = incoming.get("Forwarded")
            if forwarded:
                out.append(("Forwarded", forwarded))
        else:
            forwarded_for, proto, host = peer, request.scheme, ctx.host
        if forwarded_for:
            out.append(("X-Forwarded-For", forwarded_for))
        if proto:
            out.append(("X-Forwarded-Proto", proto))
        if host:
            out.append(("X-Forwarded-Host", host))
        out.append(("X-Request-ID", ctx.request_id))
        out += ctx.upstream_headers
        return out, has_length

    async def _body(self, request: web.BaseRequest, ctx: RequestContext, limit: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in request.content.iter_any():
                ctx.bytes_in += len(chunk)
                if ctx.bytes_in > limit:
                    raise BodyTooLarge
                yield chunk
        except ClientGone:
            raise
        except ConnectionResetError as exc:
            raise ClientGone(str(exc)) from None

    async def _whole_body(self, request: web.BaseRequest, ctx: RequestContext, limit: int) -> bytes:
        """The body read whole, within ``limit``. ``readany`` in a plain loop rather than
        ``_body``'s async generator: a small body is already buffered, and the generator
        and ``iter_any``'s iterator cost more than the read (docs/performance.md).
        ``ctx.bytes_in`` grows chunk by chunk, as the body-rate watchdog expects."""
        content = request.content
        chunks: list[bytes] = []
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                ctx.bytes_in += len(chunk)
                if ctx.bytes_in > limit:
                    raise too_large(limit)
                if not chunks and content.at_eof():
                    return chunk  # the usual small body: in one piece, nothing to join
                chunks.append(chunk)
        except BodyTooSlow:
            raise too_slow() from None
        except ConnectionResetError as exc:
            raise ClientGone(str(exc)) from None
        return b"".join(chunks)

    async def forward(self, ctx: RequestContext) -> web.StreamResponse:
        route = ctx.route
        assert route is not None
        assert self.session is not None
        if ctx.cache is not None and ctx.cache.hit is not None:
            return await ctx.cache.answer(ctx)  # gateway/policies/cache: nothing goes upstream
        request = ctx.request
        method = request.method
        query = strip_query_params(ctx.query, self.credential_query_params)
        has_body = request.body_exists
        now = time.monotonic()
        balancer = self.balancer(route)
        targets = balancer.order(now)
        if not targets:
            if balancer.checked and not balancer.healthy(now):
                raise no_healthy_upstream(balancer, now, has_body)
            metrics.UPSTREAM_ERRORS.labels("circuit_open").inc()
            raise Reject(
                502,
                "upstream-unavailable",
                "Upstream unavailable",
                decision="upstream_error",
                detail="Every upstream target of this version is failing; try again shortly.",
                headers={"Retry-After": str(math.ceil(balancer.breaker_cooldown_s))},
                close=has_body,
            )
        if ctx.websocket is not None:  # gateway/policies/websocket: relayed until either side closes
            url = targets[0].url_for(ctx.rewritten_path or ctx.upstream_path, query)
            return await ctx.websocket.run(
                self.session, url, self.request_headers(ctx), route.connect_timeout_s + route.read_timeout_s
            )
        headers = self.request_head(ctx)
        retryable = method in IDEMPOTENT and not has_body
        attempts = targets[: 1 + balancer.retries] if retryable else targets[:1]
        timeout = self.timeout(route)
        client = self.client
        assert client is not None
        last: str = "connect"
        upstream: UpstreamResponse | None = None
        body = None
        if has_body:
            length = request.content_length
            if ctx.body_check is not None or (length is not None and length <= SMALL_REQUEST):
                body = await self._whole_body(request, ctx, route.max_body_bytes)
                if ctx.body_check is not None:
                    ctx.body_check(ctx, body)  # request_validation; raises Reject in enforce mode
        path = ctx.rewritten_path or ctx.upstream_path
        for target in attempts:
            data = (
                (body if body is not None else self._body(request, ctx, route.max_body_bytes)) if has_body else None
            )
            try:
                upstream = await client.request(
                    target.origin, method, target.target_for(path, query), headers, data, timeout
                )
            except BodyTooLarge:
                raise too_large(route.max_body_bytes) from None
            except BodyTooSlow:
                raise too_slow() from None
            except ConnectTimeout:
                target.failed(time.monotonic(), "connect timeout")
                last = "connect_timeout"
                continue
            except (ConnectFailed, Disconnected):
                # Refused, unreachable, or closed before answering (a stale pooled
                # connection was already retried once on a fresh one by the client).
                target.failed(time.monotonic(), "connect error")
                last = "connect"
                continue
            except UpstreamTimeout:
                target.failed(time.monotonic(), "timeout")
                last = "timeout"
                break
            except (BadResponse, SendFailed, UpstreamError):
                # A malformed answer, or the upstream broke off while taking the body.
                target.failed(time.monotonic(), "connect error")
                last = "connect"
                break
            target.breaker.success()
            if target.health is not None:
                # Passive ejection also counts 5xx answers (the breaker does not: the
                # upstream answered, the answer is relayed).
                if upstream.status >= 500:
                    target.health.passive_failed(time.monotonic(), f"status {upstream.status}")
                else:
                    target.health.passive_ok()
            break
        if upstream is None:
            metrics.UPSTREAM_ERRORS.labels(last).inc()
            if last in ("timeout", "connect_timeout"):
                raise Reject(
                    504, "upstream-timeout", "Upstream timed out", decision="upstream_error", close=has_body
                )
            raise Reject(502, "upstream-unreachable", "Upstream unreachable", decision="upstream_error", close=has_body)
        try:
            return await self._respond(ctx, upstream)
        finally:
            upstream.release()

    async def _respond(self, ctx: RequestContext, upstream: UpstreamResponse) -> web.StreamResponse:
        request = ctx.request
        raw_headers = upstream.raw_headers
        named: set[str] = set()
        for name, value in raw_headers:
            if name.lower() == "connection":
                named.update(t.strip().lower() for t in value.split(","))
        length = upstream.content_length
        head = request.method == "HEAD"
        # Headers go straight into the response's own map (aiohttp copies a map passed as
        # headers=). A small body with a known length is sent in one write with them.
        response = (
            Response(status=upstream.status, reason=upstream.reason)
            if length is not None and length <= SMALL_RESPONSE and not head
            else StreamResponse(status=upstream.status, reason=upstream.reason)
        )
        headers = response.headers
        owned = ctx.owned_response_headers
        for name, value in raw_headers:
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in named or lower == "content-length":
                continue
            if lower in owned:
                continue
            headers.add(name, value)
        cache = ctx.cache
        kept = cache.keep(ctx, upstream, headers) if cache is not None else None  # before the edit
        if ctx.response_edit is not None:
            ctx.response_edit.apply(headers)  # the upstream's headers only; the gateway's follow
        for name, value in ctx.response_headers:
            headers.add(name, value)
        headers["X-Request-ID"] = ctx.request_id
        if cache is not None:
            headers.add("Cache-Status", cache.status(kept is not None))
        limit = self.config.max_response_bytes
        if limit and length is not None and length > limit and not head:
            # Refused before a byte is relayed; close() drops the connection with its unread body.
            upstream.close()
            metrics.UPSTREAM_ERRORS.labels("response_too_large").inc()
            raise Reject(
                502,
                "upstream-response-too-large",
                "Upstream response too large",
                decision="upstream_error",
                detail=f"The upstream declared a body over the gateway's limit of {limit} bytes.",
            )
        ctx.status = upstream.status
        if isinstance(response, Response) or (kept is not None and length is not None and not head):
            # The small body, or one the cache keeps: read whole and sent in one write.
            try:
                body = await upstream.read()
            except UpstreamError as exc:
                # Nothing is sent yet: a body that broke off or stalled is a 502 or 504.
                upstream.close()
                timed_out = isinstance(exc, UpstreamTimeout)
                metrics.UPSTREAM_ERRORS.labels("timeout" if timed_out else "mid_body").inc()
                if timed_out:
                    raise Reject(504, "upstream-timeout", "Upstream timed out", decision="upstream_error") from None
                raise Reject(
                    502, "upstream-unreachable", "Upstream unreachable", decision="upstream_error"
                ) from None
            ctx.bytes_out = len(body)
            if kept is not None and cache is not None:
                cache.store_body(kept, body)
            if not isinstance(response, Response):  # a large body the cache keeps (rare): copy the headers once
                response = Response(status=upstream.status, reason=upstream.reason, headers=headers)
            response.body = body
            await response.prepare(request)
            await response.write_eof()
            return response
        if length is not None:
            response.content_length = length
        await response.prepare(request)
        if not head:
            try:
                while True:
                    chunk = await upstream.chunk()
                    if not chunk:
                        break
                    ctx.bytes_out += len(chunk)
                    if limit and ctx.bytes_out > limit:
                        raise ResponseTooLarge
                    await response.write(chunk)
            except ResponseTooLarge:
                # An undeclared body that grows past the limit: the status is sent, so cut
                # the connection; the client sees a truncated body, never a complete one.
                metrics.UPSTREAM_ERRORS.labels("response_too_large").inc()
                ctx.decision = "upstream_error"
                upstream.close()
                if request.transport is not None:
                    request.transport.close()
                return response
            except UpstreamError:
                # Too late for a 5xx: the status is sent. Cut the connection so the
                # client sees a truncated body rather than a complete-looking one.
                metrics.UPSTREAM_ERRORS.labels("mid_body").inc()
                ctx.decision = "upstream_error"
                upstream.close()
                if request.transport is not None:
                    request.transport.close()
                return response
        await response.write_eof()
        return response


def no_healthy_upstream(balancer: Balancer, now: float, has_body: bool) -> Reject:
    """Every target of the version is out of the rotation: fail fast rather than send the
    request to a target known to be down. Retry-After: when the first ejection ends or
    the next health check is due, whichever comes first (at least 1 s)."""
    waits = []
    for t in balancer.targets:
        health = t.health
        if health is None:
            continue
        if health.ejected_until > now:
            waits.append(health.ejected_until - now)
        if not health.healthy and health.active is not None:
            waits.append(max(0.0, health.due - now) + health.active.interval_s * (health.active.healthy_threshold - 1))
    metrics.UPSTREAM_ERRORS.labels("no_healthy_upstream").inc()
    return Reject(
        503,
        "no-healthy-upstream",
        "No healthy upstream",
        decision="upstream_error",
        detail="Every upstream target of this version is failing its health checks; try again shortly.",
        headers={"Retry-After": str(max(1, math.ceil(min(waits, default=1.0))))},
        close=has_body,
    )


def too_large(limit: int) -> Reject:
    return Reject(
        413,
        "body-too-large",
        "Request body too large",
        decision="bad_request",
        detail=f"This API version accepts bodies up to {limit} bytes.",
        close=True,
    )


def too_slow() -> Reject:
    return Reject(
        408,
        "body-too-slow",
        "Request body too slow",
        decision="bad_request",
        detail="The request body arrived below the gateway's minimum rate.",
        close=True,
    )
