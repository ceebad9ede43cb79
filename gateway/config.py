"""Gateway settings: GATEWAY_* environment variables read once into a frozen dataclass.

A bad value stops the gateway at start-up with ``ConfigError`` naming the
variable, instead of surfacing later on the request path. A secret may be given
as NAME or NAME_FILE (a path whose contents are the value), as in the portal.

The API key hash secret must be the one the portal hashes with. The portal uses
TOLLWAY_KEY_HASH_SECRET, else SECRET_KEY, else (DEBUG only) a fixed development
value; the gateway reads GATEWAY_KEY_HASH_SECRET first and then falls back along
exactly that chain, so ``make run`` needs no extra setting.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.exceptions import ConfigError

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_TIMEOUT_MS = 50
DEFAULT_MAX_HEADER_BYTES = 60 * 1024
# An upstream response body larger than this is not relayed (OWASP API10, unsafe
# consumption): a declared Content-Length over it gets 502 before any byte is sent,
# a body that grows past it is cut off. 0 turns the limit off.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 75.0
DEFAULT_SNAPSHOT_PATH = "var/gateway/snapshot.json"
DEFAULT_SNAPSHOT_INTERVAL_S = 10.0
DEFAULT_SPILL_DIR = "var/gateway/spill"
DEFAULT_METERING_FLUSH_MS = 200
DEFAULT_METERING_BATCH = 500
DEFAULT_METERING_BUFFER_MAX = 20_000
DEFAULT_SPILL_MAX_EVENTS = 1_000_000
DEFAULT_CACHE_MAX_ENTRIES = 200_000
DEFAULT_CACHE_TTL_S = 60.0
DEFAULT_NEGATIVE_TTL_S = 2.0
DEFAULT_GENERATION_POLL_S = 0.5
DEFAULT_RETRIES = 1
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_COOLDOWN_S = 10.0
# Policy names understood by GATEWAY_POLICIES; "all" enables every one, "none" none.
ALL_POLICIES = ("lifecycle", "key_auth", "oauth2", "subscription", "rate_limit", "upstream_headers", "metering")
# Headers added upstream when GATEWAY_UPSTREAM_HEADERS is not set.
DEFAULT_UPSTREAM_HEADERS = ("application", "plan", "subscription", "key_prefix")
UPSTREAM_HEADER_NAMES = {
    "application": "X-Tollway-Application",
    "organization": "X-Tollway-Organization",
    "plan": "X-Tollway-Plan",
    "subscription": "X-Tollway-Subscription",
    "key_prefix": "X-Tollway-Key-Prefix",
    "client_id": "X-Tollway-Client-Id",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DEV_KEY_HASH_SECRET = "insecure-dev-only-" + "x" * 40  # mirrors portal/settings.py, DEBUG only


@dataclass(frozen=True)
class GatewayConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    redis_url: str = DEFAULT_REDIS_URL
    redis_timeout_s: float = DEFAULT_REDIS_TIMEOUT_MS / 1000
    key_hash_secret: bytes = b""
    policies: frozenset[str] = frozenset(ALL_POLICIES)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    upstream_headers: tuple[str, ...] = DEFAULT_UPSTREAM_HEADERS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    snapshot_path: str = DEFAULT_SNAPSHOT_PATH
    snapshot_interval_s: float = DEFAULT_SNAPSHOT_INTERVAL_S
    spill_dir: str = DEFAULT_SPILL_DIR
    metering_flush_s: float = DEFAULT_METERING_FLUSH_MS / 1000
    metering_batch: int = DEFAULT_METERING_BATCH
    metering_buffer_max: int = DEFAULT_METERING_BUFFER_MAX
    spill_max_events: int = DEFAULT_SPILL_MAX_EVENTS
    cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S
    negative_ttl_s: float = DEFAULT_NEGATIVE_TTL_S
    generation_poll_s: float = DEFAULT_GENERATION_POLL_S
    retries: int = DEFAULT_RETRIES
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S
    metrics_dir: str = ""

    def policy_on(self, name: str) -> bool:
        return name in self.policies


def _read(env: Mapping[str, str], name: str) -> str | None:
    file_path = env.get(f"{name}_FILE")
    if file_path:
        try:
            with open(file_path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return env.get(name)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _list(env: Mapping[str, str], name: str) -> list[str] | None:
    raw = env.get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def _key_hash_secret(env: Mapping[str, str]) -> bytes:
    for name in ("GATEWAY_KEY_HASH_SECRET", "TOLLWAY_KEY_HASH_SECRET", "SECRET_KEY"):
        value = _read(env, name)
        if value:
            return value.encode("utf-8")
    if _bool(env, "DEBUG", False):
        return _DEV_KEY_HASH_SECRET.encode("utf-8")
    raise ConfigError(
        "GATEWAY_KEY_HASH_SECRET is not set (nor TOLLWAY_KEY_HASH_SECRET or SECRET_KEY, or their _FILE forms); "
        "it must equal the portal's key hash secret"
    )


def load_config(env: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if env is None else env
    policies_raw = _list(env, "GATEWAY_POLICIES")
    if policies_raw is None or policies_raw == ["all"]:
        policies = frozenset(ALL_POLICIES)
    elif policies_raw in (["none"], ["off"], []):
        policies = frozenset()
    else:
        unknown = set(policies_raw) - set(ALL_POLICIES)
        if unknown:
            raise ConfigError(f"GATEWAY_POLICIES names unknown policies: {sorted(unknown)}; known: {ALL_POLICIES}")
        policies = frozenset(policies_raw)

    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in _list(env, "GATEWAY_TRUSTED_PROXIES") or []:
        try:
            trusted.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"GATEWAY_TRUSTED_PROXIES: {item!r} is not an IP address or network") from exc

    upstream_headers = _list(env, "GATEWAY_UPSTREAM_HEADERS")
    if upstream_headers is None:
        upstream_headers = list(DEFAULT_UPSTREAM_HEADERS)
    unknown_headers = set(upstream_headers) - set(UPSTREAM_HEADER_NAMES)
    if unknown_headers:
        raise ConfigError(
            f"GATEWAY_UPSTREAM_HEADERS names unknown fields: {sorted(unknown_headers)}; "
            f"known: {sorted(UPSTREAM_HEADER_NAMES)}"
        )

    port = _int(env, "GATEWAY_PORT", DEFAULT_PORT, minimum=0)
    if port > 65535:
        raise ConfigError(f"GATEWAY_PORT={port} is not a TCP port")
    redis_url = env.get("GATEWAY_REDIS_URL") or env.get("REDIS_URL") or DEFAULT_REDIS_URL
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"GATEWAY_REDIS_URL={redis_url!r} is not a redis:// URL")

    return GatewayConfig(
        host=env.get("GATEWAY_HOST") or DEFAULT_HOST,
        port=port,
        workers=_int(env, "GATEWAY_WORKERS", os.cpu_count() or 1, minimum=1),
        redis_url=redis_url,
        redis_timeout_s=_int(env, "GATEWAY_REDIS_TIMEOUT_MS", DEFAULT_REDIS_TIMEOUT_MS, minimum=1) / 1000,
        key_hash_secret=_key_hash_secret(env),
        policies=policies,
        trusted_proxies=tuple(trusted),
        upstream_headers=tuple(upstream_headers),
        max_header_bytes=_int(env, "GATEWAY_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES, minimum=1024),
        max_response_bytes=_int(env, "GATEWAY_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES, minimum=0),
        header_timeout_s=_float(env, "GATEWAY_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S, minimum=0.1),
        idle_timeout_s=_float(env, "GATEWAY_IDLE_TIMEOUT_S", DEFAULT_IDLE_TIMEOUT_S, minimum=0.1),
        snapshot_path=env.get("GATEWAY_SNAPSHOT_PATH") or DEFAULT_SNAPSHOT_PATH,
        snapshot_interval_s=_float(env, "GATEWAY_SNAPSHOT_INTERVAL_S", DEFAULT_SNAPSHOT_INTERVAL_S, minimum=0.1),
        spill_dir=env.get("GATEWAY_SPILL_DIR") or DEFAULT_SPILL_DIR,
        metering_flush_s=_int(env, "GATEWAY_METERING_FLUSH_MS", DEFAULT_METERING_FLUSH_MS, minimum=1) / 1000,
        metering_batch=_int(env, "GATEWAY_METERING_BATCH", DEFAULT_METERING_BATCH, minimum=1),
        metering_buffer_max=_int(env, "GATEWAY_METERING_BUFFER_MAX", DEFAULT_METERING_BUFFER_MAX, minimum=1),
        spill_max_events=_int(env, "GATEWAY_SPILL_MAX_EVENTS", DEFAULT_SPILL_MAX_EVENTS, minimum=0),
        cache_max_entries=_int(env, "GATEWAY_CACHE_MAX_ENTRIES", DEFAULT_CACHE_MAX_ENTRIES, minimum=1),
        cache_ttl_s=_float(env, "GATEWAY_CACHE_TTL_S", DEFAULT_CACHE_TTL_S, minimum=0.1),
        negative_ttl_s=_float(env, "GATEWAY_NEGATIVE_TTL_S", DEFAULT_NEGATIVE_TTL_S, minimum=0.0),
        generation_poll_s=_float(env, "GATEWAY_GENERATION_POLL_S", DEFAULT_GENERATION_POLL_S, minimum=0.05),
        retries=_int(env, "GATEWAY_RETRIES", DEFAULT_RETRIES, minimum=0),
        breaker_failures=_int(env, "GATEWAY_BREAKER_FAILURES", DEFAULT_BREAKER_FAILURES, minimum=1),
        breaker_cooldown_s=_float(env, "GATEWAY_BREAKER_COOLDOWN_S", DEFAULT_BREAKER_COOLDOWN_S, minimum=0.1),
        metrics_dir=env.get("GATEWAY_METRICS_DIR") or "",
    )
