"""Tells the upstream who is calling: X-Tollway-Application, -Plan and the like."""

from __future__ import annotations

from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.upstream_headers.schema import UPSTREAM_HEADER_NAMES, UpstreamHeadersSettings
from gateway.types import RequestContext


class UpstreamHeadersPolicy(Policy):
    NAME = "upstream_headers"
    PRIORITY = 800

    def __init__(self, settings: UpstreamHeadersSettings) -> None:
        # Each once (a repeated setting would repeat a header): the proxy appends these as they are.
        self.fields = tuple(dict.fromkeys(settings.fields))

    @classmethod
    def create(cls, settings: UpstreamHeadersSettings, deps: PolicyDeps) -> UpstreamHeadersPolicy:
        return cls(settings)

    async def access(self, ctx: RequestContext) -> None:
        app, grant = ctx.application, ctx.grant
        if app is None:
            return
        values = {
            "application": str(app.application_id),
            "organization": str(app.organization_id),
            "plan": grant.plan_slug if grant else "",
            "subscription": str(grant.subscription_id) if grant else "",
            "key_prefix": ctx.key_prefix,
            "client_id": ctx.client_id,
        }
        out = ctx.upstream_headers
        for name in self.fields:
            value = values[name]
            if value:
                out.append((UPSTREAM_HEADER_NAMES[name], value))
