"""Who may call this API: a credential (401 without one) whose application holds an
active subscription to the API (403 otherwise). Picks the limits that apply: the
plan's, or an override until it expires."""

from __future__ import annotations

import time

from gateway.exceptions import Reject
from gateway.pipeline import Policy
from gateway.policies.key_auth.policy import WWW_AUTHENTICATE
from gateway.timeutil import epoch
from gateway.types import RequestContext


class SubscriptionPolicy(Policy):
    NAME = "subscription"
    PRIORITY = 1100

    async def access(self, ctx: RequestContext) -> None:
        application, route = ctx.application, ctx.route
        if application is None or route is None:
            raise Reject(
                401,
                "credential-required",
                "Credential required",
                decision="unauthenticated",
                detail="Send an API key in X-API-Key or an access token in Authorization: Bearer.",
                headers=WWW_AUTHENTICATE,
            )
        grant = application.subscriptions.get(str(route.api_id))
        if grant is None or grant.status != "active":
            suspended = grant is not None and grant.status == "suspended"
            raise Reject(
                403,
                "subscription-suspended" if suspended else "not-subscribed",
                "Subscription suspended" if suspended else "No active subscription to this API",
                decision="forbidden",
            )
        ctx.grant = grant
        override = grant.override_limits
        if override is not None and (
            grant.override_expires_at is None or epoch(grant.override_expires_at) > time.time()
        ):
            ctx.limits = override
        else:
            ctx.limits = grant.limits
