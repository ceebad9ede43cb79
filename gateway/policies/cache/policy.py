"""Response caching for GET and HEAD, per version (``policies.cache`` in the route).

Runs in the access phase after authentication, the rate limit, the transforms and the
X-Tollway-* headers (PRIORITY 790), so a hit is still authenticated, limited and metered
(the admit and log phases run as for any request); the proxy then answers it from the
worker's memory instead of going upstream (gateway/policies/cache/store.py has the rules).
A version without ``cache`` costs two attribute reads.
"""

from __future__ import annotations

from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.cache.schema import CacheSettings
from gateway.policies.cache.store import CacheTicket, Store
from gateway.types import RequestContext


class CachePolicy(Policy):
    NAME = "cache"
    PRIORITY = 790  # after rate_limit (900), transform (850) and upstream_headers (800)

    def __init__(self, settings: CacheSettings) -> None:
        self.store = Store(
            max_entries=settings.max_entries,
            max_bytes=settings.max_bytes,
            max_entry_bytes=settings.max_entry_bytes,
        )

    @classmethod
    def create(cls, settings: CacheSettings, deps: PolicyDeps) -> CachePolicy:
        return cls(settings)

    async def access(self, ctx: RequestContext) -> None:
        route = ctx.route
        if route is None:
            return
        cache = route.policies.cache
        if cache is None:
            return  # the usual case
        request = ctx.request
        if request.method not in ("GET", "HEAD") or request.body_exists or ctx.websocket is not None:
            return
        ctx.cache = CacheTicket(self.store, cache, ctx)
