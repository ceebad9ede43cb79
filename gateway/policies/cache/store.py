"""The response cache of one worker (an LRU bounded in entries and bytes) and the ticket one
GET or HEAD carries through the proxy: the entry it may be answered with, or what to store.

The rules (RFC 9111, as a shared cache that never revalidates):

* Only GET responses are stored; a HEAD is answered from the stored GET (headers, no body)
  and otherwise goes upstream without being stored.
* The request may opt out: ``Cache-Control: no-store`` (neither answered nor stored),
  ``no-cache`` or ``max-age=0`` (or ``Pragma: no-cache``): not answered from the cache,
  the fresh response may be stored.
* A response is stored when its status is one of CACHEABLE_STATUS, its length is known
  and at most GATEWAY_CACHE_MAX_ENTRY_BYTES, it has no ``Set-Cookie`` and its
  Cache-Control has none of ``no-store``, ``private``, ``no-cache``; ``Vary: *`` is never
  stored. Its TTL is ``s-maxage``, else ``max-age``, else ``Expires`` minus ``Date``, else
  the version's ``default_ttl_s`` (unset: not stored); never above the version's
  ``ttl_s``, and less whatever ``Age`` the upstream reported.
* A request the upstream sees with ``Authorization`` (not the gateway's own OAuth2
  token, which it strips) is stored only when the response says ``public``,
  ``s-maxage`` or ``must-revalidate`` (RFC 9111 §3.5).
* ``Vary``: the entry is keyed by the values of the named request headers as the
  upstream would see them (the client's headers, the gateway's X-Tollway-* and the
  version's request transform).

Stored headers are the upstream's, before the version's response transform, which is
applied again to each hit with the caller's context; the gateway's own headers
(rate limit, CORS, X-Request-ID) are always the current request's.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.responses import Response
from gateway.route_policies import ResponseCache

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.types import RequestContext
    from gateway.upstream import UpstreamResponse

CACHEABLE_STATUS = frozenset({200, 203, 204, 300, 301, 308, 404, 410})
CACHE_NAME = "Tollway"  # the cache's name in Cache-Status (RFC 9211)
ENTRY_OVERHEAD = 256  # bytes counted per entry beyond its body and headers

# (version id, application id or 0 when shared, path, query)
Primary = tuple[int, int, str, str]
Key = tuple[Primary, tuple[str, ...]]


def directives(value: str | None) -> dict[str, str]:
    """``max-age=60, no-cache="Set-Cookie", private`` -> {"max-age": "60", "no-cache": "Set-Cookie", "private": ""}"""
    out: dict[str, str] = {}
    if not value:
        return out
    for part in value.split(","):
        name, _, argument = part.partition("=")
        name = name.strip().lower()
        if name:
            out.setdefault(name, argument.strip().strip('"'))
    return out


def seconds(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


@dataclass(slots=True)
class Entry:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float  # monotonic
    expires_at: float  # monotonic
    initial_age: int  # the Age the upstream reported
    size: int


@dataclass(slots=True)
class Kept:
    """What the proxy keeps of an upstream response while its body arrives."""

    key: Key
    vary: tuple[str, ...]  # the lower-case names of the request headers it varies on
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    ttl: float
    initial_age: int


class Store:
    def __init__(self, *, max_entries: int, max_bytes: int, max_entry_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self.bytes = 0
        # The request headers a primary key's responses vary on (as last stored).
        self.vary_of: dict[Primary, tuple[str, ...]] = {}

    def get(self, key: Key, now: float) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry

    def put(self, key: Key, entry: Entry, vary: tuple[str, ...]) -> None:
        if key in self.entries:
            self._drop(key)
        if len(self.vary_of) >= 2 * self.max_entries:
            self.vary_of.clear()  # names are relearnt from the next responses; never grows without bound
        self.vary_of[key[0]] = vary
        self.entries[key] = entry
        self.bytes += entry.size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self.entries))
            self._drop(oldest)

    def _drop(self, key: Key) -> None:
        entry = self.entries.pop(key)
        self.bytes -= entry.size


def _vary_values(ctx: RequestContext, names: tuple[str, ...]) -> tuple[str, ...]:
    """The named request headers as the upstream would see them."""
    if not names:
        return ()
    headers: CIMultiDict[str] | CIMultiDictProxy[str] = ctx.request.headers
    if ctx.upstream_headers or ctx.request_edit is not None:
        headers = CIMultiDict(headers)
        for name, value in ctx.upstream_headers:
            headers[name] = value
        if ctx.request_edit is not None:
            ctx.request_edit.apply(headers)
    return tuple(", ".join(headers.getall(name, ())) for name in names)


class CacheTicket:
    """One request's dealings with the cache: looked up in the access phase; the proxy
    answers ``hit`` without going upstream, or offers the upstream's response to ``keep``."""

    __slots__ = ("authorized", "detail", "fwd", "head", "hit", "may_store", "policy", "primary", "store")

    def __init__(self, store: Store, policy: ResponseCache, ctx: RequestContext) -> None:
        self.store = store
        self.policy = policy
        request = ctx.request
        headers = request.headers
        route = ctx.route
        assert route is not None
        application = ctx.application
        app_id = 0 if policy.shared or application is None else application.application_id
        self.primary: Primary = (route.version_id, app_id, ctx.rewritten_path or ctx.upstream_path, ctx.query)
        self.head = request.method == "HEAD"
        self.hit: Entry | None = None
        self.detail = ""
        authorization = headers.get("Authorization", "")
        # The gateway's own bearer token (oauth2 set client_id) never reaches the upstream.
        self.authorized = bool(authorization) and not (ctx.client_id and authorization[:7].lower() == "bearer ")
        asked = directives(headers.get("Cache-Control"))
        if not asked and "no-cache" in headers.get("Pragma", "").lower():
            asked = {"no-cache": ""}
        self.may_store = not self.head and "no-store" not in asked
        if "no-store" in asked or "no-cache" in asked or asked.get("max-age") == "0":
            self.fwd = "request"
            return
        vary = store.vary_of.get(self.primary)
        if vary is None:
            self.fwd = "uri-miss"
            return
        self.hit = store.get((self.primary, _vary_values(ctx, vary)), time.monotonic())
        self.fwd = "" if self.hit is not None else ("vary-miss" if vary else "uri-miss")

    # --- a hit -------------------------------------------------------------------------

    async def answer(self, ctx: RequestContext) -> web.StreamResponse:
        entry = self.hit
        assert entry is not None
        headers: CIMultiDict[str] = CIMultiDict(entry.headers)
        for name in ctx.owned_response_headers:
            headers.popall(name, None)
        if ctx.response_edit is not None:
            ctx.response_edit.apply(headers)
        for name, value in ctx.response_headers:
            headers.add(name, value)
        now = time.monotonic()
        headers["Age"] = str(entry.initial_age + int(now - entry.stored_at))
        headers.add("Cache-Status", f"{CACHE_NAME}; hit; ttl={max(0, int(entry.expires_at - now))}")
        headers["X-Request-ID"] = ctx.request_id
        ctx.status = entry.status
        ctx.bytes_out = 0 if self.head else len(entry.body)
        # For HEAD aiohttp sends the length of the body and not the body itself.
        response = Response(status=entry.status, reason=entry.reason, headers=headers, body=entry.body)
        await response.prepare(ctx.request)
        await response.write_eof()
        return response

    # --- a miss ------------------------------------------------------------------------

    def keep(self, ctx: RequestContext, upstream: UpstreamResponse, headers: CIMultiDict[str]) -> Kept | None:
        """The response to store once its body has arrived, or None (``detail`` says why).
        ``headers``: the upstream's, already without hop-by-hop ones."""
        if not self.may_store:
            return None
        status = upstream.status
        if status not in CACHEABLE_STATUS:
            self.detail = "status"
            return None
        length = upstream.content_length
        if length is None or length > self.store.max_entry_bytes:
            self.detail = "size"
            return None
        theirs = upstream.headers
        said = directives(",".join(theirs.getall("Cache-Control", ())))
        if "no-store" in said or "private" in said or "no-cache" in said:
            self.detail = "cache-control"
            return None
        if "Set-Cookie" in theirs:
            self.detail = "set-cookie"
            return None
        vary = tuple(
            sorted({n.strip().lower() for v in theirs.getall("Vary", ()) for n in v.split(",") if n.strip()})
        )
        if "*" in vary:
            self.detail = "vary"
            return None
        if self.authorized and not ("public" in said or "s-maxage" in said or "must-revalidate" in said):
            self.detail = "authorization"
            return None
        ttl = self._freshness(said, theirs)
        if ttl is None:
            self.detail = "no-ttl"
            return None
        initial_age = seconds(theirs.get("Age")) or 0
        ttl = min(ttl, self.policy.ttl_s) - initial_age
        if ttl <= 0:
            self.detail = "stale"
            return None
        kept_headers = tuple((n, v) for n, v in headers.items() if n.lower() != "age")
        return Kept((self.primary, _vary_values(ctx, vary)), vary, status, upstream.reason or "", kept_headers, ttl,
                    initial_age)

    def _freshness(self, said: dict[str, str], theirs: CIMultiDict[str]) -> float | None:
        for name in ("s-maxage", "max-age"):
            if name in said:
                return seconds(said[name]) or 0
        expires = theirs.get("Expires")
        if expires is not None:
            try:
                until = parsedate_to_datetime(expires)
                date = theirs.get("Date")
                since = parsedate_to_datetime(date).timestamp() if date else time.time()
                return max(0.0, until.timestamp() - since)
            except (TypeError, ValueError):
                return 0  # an invalid Expires means already expired (RFC 9111 §5.3)
        return self.policy.default_ttl_s

    def store_body(self, kept: Kept, body: bytes) -> None:
        now = time.monotonic()
        size = len(body) + sum(len(n) + len(v) for n, v in kept.headers) + ENTRY_OVERHEAD
        entry = Entry(kept.status, kept.reason, kept.headers, body, now, now + kept.ttl, kept.initial_age, size)
        self.store.put(kept.key, entry, kept.vary)

    def status(self, stored: bool) -> str:
        """This cache's Cache-Status member for a response that went upstream."""
        value = f"{CACHE_NAME}; fwd={self.fwd or 'miss'}"
        if stored:
            return value + "; stored"
        if self.detail:
            return value + f"; detail={self.detail}"
        return value
