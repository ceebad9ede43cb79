"""Settings of the oauth2 policy: none yet.

Tokens come from the portal's client-credentials flow. The portal publishes each
token's record (TokenRecord, under the SHA-256 of the token, expiring with it),
so a token is validated from Redis and the worker cache, never by calling the
portal. Redis down: a cached token is judged from its copy; an unknown one gets
503 with Retry-After.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class OAuth2Settings(PolicySettings):
    pass
