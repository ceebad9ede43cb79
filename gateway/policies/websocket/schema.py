"""Settings of the websocket policy: none of its own. Whether a version proxies WebSockets,
and its idle and lifetime limits, are per version (``policies.websocket`` in the route,
gateway/route_policies.py). The handshake is authenticated and rate limited like any
request, so Redis being down affects it exactly as it affects a request; an open
connection is closed on a key, token or application invalidation only after the record,
read again, says so (a read that fails leaves it open)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class WebSocketSettings(PolicySettings):
    pass
