"""Settings of the key_auth policy (environment: GATEWAY_KEY_AUTH_*).

Redis down: a key already in the worker's cache (or in the loaded snapshot) is
judged from that copy, so a key known to be revoked stays revoked; an unknown
key cannot be checked and gets 503 with Retry-After, whatever the failure mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.pipeline import PolicySettings, setting
from tollway.env import read_str


@dataclass(frozen=True)
class KeyAuthSettings(PolicySettings):
    header: str = setting("X-API-Key", "Request header that carries the key; Authorization: Bearer works too.")
    query_param: str = setting(
        "api_key", "Query parameter that carries the key, honoured only where the version allows it."
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: GatewayConfig) -> KeyAuthSettings:
        return cls(
            header=read_str("GATEWAY_KEY_AUTH_HEADER", "X-API-Key", env),
            query_param=read_str("GATEWAY_KEY_AUTH_QUERY_PARAM", "api_key", env),
        )
