"""API keys: X-API-Key, Authorization: Bearer tw_..., or ?api_key= where the version allows it.

A key is checked for shape and checksum before anything else, so junk costs no
hashing and no Redis read. The HMAC under the shared secret is the lookup key;
the full key is never stored or logged, only its display prefix.
"""

from __future__ import annotations

import time

from gateway import contract
from gateway.exceptions import Reject, StateUnavailable
from gateway.pipeline import Credentials, Policy, PolicyDeps
from gateway.policies.key_auth.schema import KeyAuthSettings
from gateway.state import State
from gateway.timeutil import epoch
from gateway.types import RequestContext

WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="tollway"'}


def bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def unauthenticated(detail: str) -> Reject:
    return Reject(
        401,
        "invalid-credential",
        "Invalid credential",
        decision="unauthenticated",
        detail=detail,
        headers=WWW_AUTHENTICATE,
    )


def state_unavailable() -> Reject:
    return Reject(
        503,
        "credentials-unavailable",
        "Credentials cannot be checked right now",
        decision="redis_unavailable",
        headers={"Retry-After": "1"},
    )


def key_usable(record: contract.KeyRecord, now: float) -> bool:
    """Same rule as the portal's ApiKey.effective_status: active, not expired, or rotating."""
    if record.status != "active":
        return False
    if record.expires_at and epoch(record.expires_at) <= now:
        return False
    return not (record.grace_until and epoch(record.grace_until) <= now)


class KeyAuthPolicy(Policy):
    NAME = "key_auth"
    PRIORITY = 1300
    REQUIRES = ("subscription",)  # a key says who calls; subscription says whether they may

    def __init__(self, state: State, secret: bytes, settings: KeyAuthSettings) -> None:
        self.state = state
        self.secret = secret
        self.key_hash = contract.KeyHasher(secret)
        self.settings = settings

    @classmethod
    def create(cls, settings: KeyAuthSettings, deps: PolicyDeps) -> KeyAuthPolicy:
        return cls(deps.state, deps.config.key_hash_secret, settings)

    @classmethod
    def credentials(cls, settings: KeyAuthSettings) -> Credentials:
        # The query parameter is stripped on every version, not only where it is honoured.
        return Credentials(headers=frozenset({settings.header.lower()}), bearer=True,
                           query_params=(settings.query_param,))

    def presented_key(self, ctx: RequestContext) -> str | None:
        headers = ctx.request.headers
        key = headers.get(self.settings.header)
        if key is None:
            token = bearer(headers.get("Authorization"))
            if token is not None and token.startswith(contract.KEY_PREFIX):
                key = token
        if key is None and ctx.route is not None and ctx.route.allow_query_key:
            key = ctx.request.query.get(self.settings.query_param)
        return key

    async def access(self, ctx: RequestContext) -> None:
        key = self.presented_key(ctx)
        if key is None:
            return  # perhaps an OAuth2 token; the subscription policy refuses if nothing matched
        ctx.credential_present = True
        key = key.strip()
        if not contract.key_is_well_formed(key):
            raise unauthenticated("The API key is malformed.")
        digest = self.key_hash(key)
        try:
            record = await self.state.key(digest)
        except StateUnavailable as exc:
            raise state_unavailable() from exc
        if record is None or not key_usable(record, time.time()):
            raise unauthenticated("The API key is unknown, revoked or expired.")
        try:
            application = await self.state.application(record.application_id)
        except StateUnavailable as exc:
            raise state_unavailable() from exc
        if application is None:
            raise unauthenticated("The API key's application no longer exists.")
        ctx.application = application
        ctx.credential_hash = digest
        ctx.key_prefix = record.prefix or contract.key_display_prefix(key)
