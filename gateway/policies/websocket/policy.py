"""WebSockets, per version (``policies.websocket`` in the route).

An upgrade request (``Upgrade: websocket``) to a version that allows WebSockets goes
through the pipeline like any request: key or token authentication, the subscription,
ip_rules and the rate limit apply to the handshake, and metering journals its admission.
The proxy then relays the connection (gateway/policies/websocket/relay.py); the log phase
meters it once, when it closes, with its duration and the bytes each way. An upgrade
request to any other version is refused with 400 ``websocket-not-allowed`` before any
credential is checked.

Open connections are kept per credential hash and per application. On an invalidation of
a key, token or application the record is read again; a connection whose credential or
subscription no longer admits it is closed (1008) at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from gateway import contract
from gateway.exceptions import Reject, StateUnavailable
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.key_auth.policy import key_usable
from gateway.policies.websocket.relay import REVOKED, SHUTDOWN, Connection, is_upgrade
from gateway.policies.websocket.schema import WebSocketSettings
from gateway.state import State
from gateway.timeutil import epoch
from gateway.types import RequestContext

log = logging.getLogger("gateway.websocket")


class WebSocketPolicy(Policy):
    NAME = "websocket"
    PRIORITY = 1950  # after lifecycle (2000: a retired version is 410 first), before cors and auth

    def __init__(self, state: State) -> None:
        self.state = state
        self.by_credential: dict[str, set[Connection]] = {}
        self.by_application: dict[int, set[Connection]] = {}
        self.checks: set[asyncio.Task[None]] = set()
        state.invalidation_listeners.append(self.invalidated)

    @classmethod
    def create(cls, settings: WebSocketSettings, deps: PolicyDeps) -> WebSocketPolicy:
        return cls(deps.state)

    async def access(self, ctx: RequestContext) -> None:
        request = ctx.request
        if "Upgrade" not in request.headers or not is_upgrade(request.headers):
            return  # the usual case: one header lookup
        route = ctx.route
        policy = route.policies.websocket if route is not None else None
        if policy is None:
            raise Reject(
                400, "websocket-not-allowed", "WebSockets not allowed", decision="bad_request",
                detail="This API version does not accept WebSocket upgrades.",
            )
        if not web.WebSocketResponse().can_prepare(request).ok:
            raise Reject(
                400, "bad-websocket-handshake", "Malformed WebSocket handshake", decision="bad_request",
                detail="A WebSocket upgrade is a GET with Connection: Upgrade, Sec-WebSocket-Key "
                "and Sec-WebSocket-Version: 13.",
            )
        ctx.websocket = Connection(ctx, policy, self)

    # --- open connections ----------------------------------------------------------------

    def opened(self, connection: Connection) -> None:
        ctx = connection.ctx
        if ctx.credential_hash:
            self.by_credential.setdefault(ctx.credential_hash, set()).add(connection)
        if ctx.application is not None:
            self.by_application.setdefault(ctx.application.application_id, set()).add(connection)

    def closed(self, connection: Connection) -> None:
        ctx = connection.ctx
        by_credential = self.by_credential.get(ctx.credential_hash)
        if by_credential is not None:
            by_credential.discard(connection)
            if not by_credential:
                del self.by_credential[ctx.credential_hash]
        application_id = ctx.application.application_id if ctx.application is not None else 0
        by_application = self.by_application.get(application_id)
        if by_application is not None:
            by_application.discard(connection)
            if not by_application:
                del self.by_application[application_id]

    def invalidated(self, inv: contract.Invalidation) -> None:
        if inv.kind in ("key", "token"):
            connections = set(self.by_credential.get(inv.id, ()))
        elif inv.kind == "app":
            connections = set(self.by_application.get(int(inv.id), ())) if inv.id.isdigit() else set()
        elif inv.kind == "route":
            return  # a retired version's open connections run out at their maximum lifetime
        else:  # "all" and kinds newer than us
            connections = {c for found in self.by_credential.values() for c in found}
        if connections:
            task = asyncio.get_running_loop().create_task(self.recheck(connections))
            self.checks.add(task)
            task.add_done_callback(self.checks.discard)

    async def recheck(self, connections: set[Connection]) -> None:
        for connection in connections:
            try:
                admitted = await self.still_admitted(connection.ctx)
            except StateUnavailable:
                continue  # unknown: keep it, as the request path serves what it last knew
            except Exception:
                log.exception("rechecking a WebSocket's credential failed")
                continue
            if not admitted:
                connection.close(REVOKED)

    async def still_admitted(self, ctx: RequestContext) -> bool:
        """Whether the handshake's credential and subscription would still be admitted."""
        now = time.time()
        application_id = ctx.application.application_id if ctx.application is not None else 0
        if ctx.credential_hash and ctx.client_id:
            token = await self.state.token(ctx.credential_hash)
            if token is None or token.revoked or epoch(token.expires_at) <= now:
                return False
        elif ctx.credential_hash:
            key = await self.state.key(ctx.credential_hash)
            if key is None or not key_usable(key, now):
                return False
        application = await self.state.application(application_id)
        if application is None or ctx.route is None:
            return False
        grant = application.subscriptions.get(str(ctx.route.api_id))
        return grant is not None and grant.status == "active"

    async def stop(self) -> None:
        for found in list(self.by_credential.values()) + list(self.by_application.values()):
            for connection in found:
                connection.close(SHUTDOWN)
