"""Type aliases and the per-request context that flows through the policy pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway import contract

if TYPE_CHECKING:
    from aiohttp.web_request import BaseRequest

    from gateway.policies.cache.store import CacheTicket
    from gateway.policies.transform.edit import HeaderEdit
    from gateway.policies.websocket.relay import Connection

HeaderList = list[tuple[str, str]]


@dataclass(slots=True)
class LimitState:
    """What the limiter answered for one request: the source of every RateLimit header."""

    # (policy name, quota, window seconds, remaining, seconds to reset) for each enforced dimension
    policies: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    denied: str = ""  # "", "rate" or "quota"
    retry_after_s: int = 0
    local: bool = False  # decided by the in-process fallback while Redis was down
    # The RateLimit-Policy value for these policies, made once per limiter reply and shared
    # by the requests a lease admits (names, quotas and windows do not change within it).
    policy_header: str = ""


@dataclass(slots=True)
class RequestContext:
    request: BaseRequest
    request_id: str  # the client's X-Request-ID when it sent a sane one, else event_id
    event_id: str  # ours alone, unique: the metering event id
    started: float = field(default_factory=time.perf_counter)
    ts_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    api_slug: str = ""
    version: str = ""
    upstream_path: str = "/"  # below /{api}/{version}, dot segments resolved (gateway/edge.py)
    query: str = ""  # the raw query string, as the client sent it
    host: str = ""  # the authority the request named: absolute-form target's, else Host's
    route: contract.RouteRecord | None = None
    application: contract.ApplicationRecord | None = None
    key_prefix: str = ""
    client_id: str = ""
    credential_present: bool = False
    grant: contract.SubscriptionGrant | None = None
    limits: contract.Limits | None = None
    limit_state: LimitState | None = None
    decision: str = "allowed"
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    response_headers: HeaderList = field(default_factory=list)
    # Lower-case names of upstream response headers to drop because a policy owns them
    # (the cors policy's Access-Control-*: two Allow-Origin headers would fail in a browser).
    owned_response_headers: frozenset[str] = frozenset()
    upstream_headers: HeaderList = field(default_factory=list)
    # Set by the version's transforms (gateway/policies/transform): the path sent upstream
    # when it differs from upstream_path (which metering keeps as the caller's), and header
    # edits the proxy applies to the outgoing request and to the upstream's response.
    rewritten_path: str = ""
    request_edit: HeaderEdit | None = None
    response_edit: HeaderEdit | None = None
    # Set by request_validation for a JSON body with a schema: the proxy reads the body
    # whole (within the limit, under the body-rate watchdog), calls this with the context
    # and the body (it may raise Reject) and sends those bytes instead of streaming. It
    # never keeps the context: a cycle would leave every request to the garbage collector.
    body_check: Callable[[RequestContext, bytes], None] | None = None
    # Set by the version's cache (gateway/policies/cache) on a GET or HEAD it may answer or store.
    cache: CacheTicket | None = None
    # Set by the websocket policy on an upgrade request to a version that allows it.
    websocket: Connection | None = None
    # The hash of the key (key_auth) or token (oauth2) that authenticated the request:
    # open WebSockets are closed when it is revoked.
    credential_hash: str = ""
