"""OAuth2 bearer tokens issued by the portal (client credentials)."""

from __future__ import annotations

import time

from gateway import contract
from gateway.exceptions import StateUnavailable
from gateway.pipeline import Credentials, Policy, PolicyDeps
from gateway.policies.key_auth.policy import bearer, state_unavailable, unauthenticated
from gateway.policies.oauth2.schema import OAuth2Settings
from gateway.state import State
from gateway.timeutil import epoch
from gateway.types import RequestContext


class OAuth2Policy(Policy):
    NAME = "oauth2"
    PRIORITY = 1250
    REQUIRES = ("subscription",)  # a token says who calls; subscription says whether they may

    def __init__(self, state: State) -> None:
        self.state = state

    @classmethod
    def create(cls, settings: OAuth2Settings, deps: PolicyDeps) -> OAuth2Policy:
        return cls(deps.state)

    @classmethod
    def credentials(cls, settings: OAuth2Settings) -> Credentials:
        return Credentials(bearer=True)

    async def access(self, ctx: RequestContext) -> None:
        if ctx.application is not None:
            return
        token = bearer(ctx.request.headers.get("Authorization"))
        if token is None or token.startswith(contract.KEY_PREFIX):
            return
        ctx.credential_present = True
        digest = contract.token_hash(token)
        try:
            record = await self.state.token(digest)
        except StateUnavailable as exc:
            raise state_unavailable() from exc
        if record is None or record.revoked or epoch(record.expires_at) <= time.time():
            raise unauthenticated("The access token is unknown, revoked or expired.")
        try:
            application = await self.state.application(record.application_id)
        except StateUnavailable as exc:
            raise state_unavailable() from exc
        if application is None:
            raise unauthenticated("The access token's application no longer exists.")
        ctx.application = application
        ctx.credential_hash = digest
        ctx.client_id = record.client_id
