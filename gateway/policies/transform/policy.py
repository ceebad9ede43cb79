"""Per-version request and response transforms: headers, query parameters and the path prefix.

What to change comes from the route (``policies.request_transform`` and
``policies.response_transform``), compiled once per published record. The path and
query are rewritten here; header edits are resolved here (with the caller's context,
which the auth policies found) and applied by the proxy, after it has set the gateway's
own headers, which the portal never lets a transform touch.
"""

from __future__ import annotations

from gateway import contract
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.transform.edit import CompiledHeaders, CompiledQuery, rewrite_prefix
from gateway.policies.transform.schema import TransformSettings
from gateway.route_policies import PathPrefix
from gateway.types import RequestContext


class Compiled:
    __slots__ = ("needs_context", "path_prefix", "query", "request_headers", "response_headers")

    def __init__(self, route: contract.RouteRecord) -> None:
        request, response = route.policies.request_transform, route.policies.response_transform
        self.request_headers = CompiledHeaders(request) if request is not None else None
        self.response_headers = CompiledHeaders(response) if response is not None else None
        self.query = CompiledQuery(request) if request is not None else None
        if self.query is not None and self.query.empty:
            self.query = None
        self.path_prefix: PathPrefix | None = request.path_prefix if request is not None else None
        self.needs_context = any(
            h is not None and h.constant is None for h in (self.request_headers, self.response_headers)
        ) or (self.query is not None and bool(self.query.add))


def caller_context(ctx: RequestContext) -> dict[str, str]:
    """The values $(name) may use (route_policies.TEMPLATE_NAMES); "" when unknown."""
    app, grant = ctx.application, ctx.grant
    return {
        "application_id": str(app.application_id) if app else "",
        "organization_id": str(app.organization_id) if app else "",
        "plan": grant.plan_slug if grant else "",
        "subscription_id": str(grant.subscription_id) if grant else "",
        "key_prefix": ctx.key_prefix,
        "client_id": ctx.client_id,
        "request_id": ctx.request_id,
    }


class TransformPolicy(Policy):
    NAME = "transform"
    PRIORITY = 850  # after auth (the caller's context) and the rate limit: only admitted requests

    def __init__(self) -> None:
        # version id -> (the record compiled, its compiled transforms); a new record recompiles.
        self.compiled: dict[int, tuple[contract.RouteRecord, Compiled]] = {}

    @classmethod
    def create(cls, settings: TransformSettings, deps: PolicyDeps) -> TransformPolicy:
        return cls()

    def compile(self, route: contract.RouteRecord) -> Compiled:
        entry = self.compiled.get(route.version_id)
        if entry is not None and entry[0] is route:
            return entry[1]
        compiled = Compiled(route)
        self.compiled[route.version_id] = (route, compiled)
        return compiled

    async def access(self, ctx: RequestContext) -> None:
        route = ctx.route
        if route is None:
            return
        policies = route.policies
        if policies.request_transform is None and policies.response_transform is None:
            return  # the usual case: two attribute reads
        compiled = self.compile(route)
        context = caller_context(ctx) if compiled.needs_context else {}
        if compiled.path_prefix is not None:
            ctx.rewritten_path = rewrite_prefix(ctx.upstream_path, compiled.path_prefix)
        if compiled.query is not None:
            ctx.query = compiled.query.apply(ctx.query, context)
        if compiled.request_headers is not None and not compiled.request_headers.empty:
            ctx.request_edit = compiled.request_headers.edit(context)
        if compiled.response_headers is not None and not compiled.response_headers.empty:
            ctx.response_edit = compiled.response_headers.edit(context)
