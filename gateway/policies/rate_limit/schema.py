"""Settings of the rate_limit policy (environment: GATEWAY_RATE_LIMIT_*).

What happens when Redis is down is not a gateway-wide setting but each API
version's own ``redis_failure_mode`` (contract.RouteRecord):

* ``fail_closed``: 503 with ``Retry-After``; nothing reaches the upstream.
* ``fail_open``: an in-process sliding window admits ``rate / local_share`` per
  second and per minute in each worker (``local_share`` defaults to the number of
  workers of the whole live fleet, every node's, as last read from Redis: see
  gateway/fleet.py; so the fleet as a whole stays at the plan's rate). Quotas cannot
  be counted without Redis and are not enforced until it is back.

Unlimited plans make no limiter call, but a ``fail_closed`` version still refuses
them (503) while Redis is known to be down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.pipeline import PolicySettings, setting
from tollway.env import read_bool, read_int


@dataclass(frozen=True)
class RateLimitSettings(PolicySettings):
    ietf_headers: bool = setting(True, "Send RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers).")
    legacy_headers: bool = setting(True, "Send X-RateLimit-Limit, -Remaining and -Reset for older clients.")
    local_share: int = setting(
        0, "fail_open: each worker admits the plan rate divided by this; 0 means the live fleet's worker count."
    )
    retry_after_redis_down_s: int = setting(1, "Retry-After sent with the fail_closed 503 (at least 1).")
    lease_ms: int = setting(
        250,
        "Admission leases: how long a worker spends a block of admissions taken from Redis before it returns"
        " the rest (at most 500; Redis ends the lease at twice this). 0 turns leases off. A refusal made while"
        " other workers hold leases that end before its own retry time waits for them (at most twice this)"
        " and asks once more.",
    )
    lease_max: int = setting(64, "Admission leases: the most admissions one lease may hold.")

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: GatewayConfig) -> RateLimitSettings:
        share = read_int("GATEWAY_RATE_LIMIT_LOCAL_SHARE", 0, env, minimum=0)
        return cls(
            ietf_headers=read_bool("GATEWAY_RATE_LIMIT_IETF_HEADERS", True, env),
            legacy_headers=read_bool("GATEWAY_RATE_LIMIT_LEGACY_HEADERS", True, env),
            local_share=share,
            retry_after_redis_down_s=read_int("GATEWAY_RATE_LIMIT_RETRY_AFTER_REDIS_DOWN_S", 1, env, minimum=1),
            lease_ms=read_int("GATEWAY_RATE_LIMIT_LEASE_MS", 250, env, minimum=0, maximum=500),
            lease_max=read_int("GATEWAY_RATE_LIMIT_LEASE_MAX", 64, env, minimum=1, maximum=100_000),
        )
