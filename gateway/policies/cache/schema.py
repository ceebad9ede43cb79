"""Settings of the cache policy (environment: GATEWAY_CACHE_*): how much each worker may hold.

What to cache is per version (``policies.cache`` in the route: the TTL ceiling, a TTL for
responses without one, and whether applications share entries; gateway/route_policies.py).
The cache lives in each worker's memory, least recently used entries go first, so Redis
being down changes nothing here (a hit still needs the key lookup and the rate limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.pipeline import PolicySettings, setting
from tollway.env import read_int


@dataclass(frozen=True)
class CacheSettings(PolicySettings):
    max_entries: int = setting(10_000, "The most responses one worker keeps (least recently used go first).")
    max_bytes: int = setting(64 * 1024 * 1024, "The most bytes of responses (bodies and headers) one worker keeps.")
    max_entry_bytes: int = setting(1024 * 1024, "Larger responses (or ones of unknown length) are never stored.")

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: GatewayConfig) -> CacheSettings:
        return cls(
            max_entries=read_int("GATEWAY_CACHE_MAX_ENTRIES", 10_000, env, minimum=1, maximum=10_000_000),
            max_bytes=read_int("GATEWAY_CACHE_MAX_BYTES", 64 * 1024 * 1024, env, minimum=1024),
            max_entry_bytes=read_int("GATEWAY_CACHE_MAX_ENTRY_BYTES", 1024 * 1024, env, minimum=1),
        )
