"""Settings of the rate_limit policy (environment: GATEWAY_RATE_LIMIT_*).

What happens when Redis is down is not a gateway-wide setting but each API
version's own ``redis_failure_mode`` (contract.RouteRecord):

* ``fail_closed``: 503 with ``Retry-After``; nothing reaches the upstream.
* ``fail_open``: an in-process sliding window admits ``rate / local_share`` per
  second and per minute in each worker (``local_share`` defaults to the number of
  workers, so the box as a whole stays near the plan's rate). Quotas cannot be
  counted without Redis and are not enforced until it is back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.exceptions import ConfigError
from gateway.pipeline import setting


@dataclass(frozen=True)
class RateLimitSettings:
    ietf_headers: bool = setting(True, "Send RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers).")
    legacy_headers: bool = setting(True, "Send X-RateLimit-Limit, -Remaining and -Reset for older clients.")
    local_share: int = setting(
        0, "fail_open: each worker admits the plan rate divided by this; 0 means the number of workers."
    )
    retry_after_redis_down_s: int = setting(1, "Retry-After sent with the fail_closed 503.")

    @classmethod
    def from_env(cls, env: Mapping[str, str], workers: int) -> RateLimitSettings:
        def flag(name: str, default: bool) -> bool:
            raw = env.get(name)
            if raw is None:
                return default
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ConfigError(f"{name}={raw!r} is not a boolean")

        def number(name: str, default: int) -> int:
            raw = env.get(name)
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r} is not an integer") from exc
            if value < 0:
                raise ConfigError(f"{name}={raw!r} must not be negative")
            return value

        share = number("GATEWAY_RATE_LIMIT_LOCAL_SHARE", 0) or workers
        return cls(
            ietf_headers=flag("GATEWAY_RATE_LIMIT_IETF_HEADERS", True),
            legacy_headers=flag("GATEWAY_RATE_LIMIT_LEGACY_HEADERS", True),
            local_share=max(1, share),
            retry_after_redis_down_s=max(1, number("GATEWAY_RATE_LIMIT_RETRY_AFTER_REDIS_DOWN_S", 1)),
        )
