"""Gateway settings: GATEWAY_* environment variables read once into a frozen dataclass.

Values are read with tollway.env, under the portal's rules (NAME_FILE, whitespace
stripped, empty means unset). A bad value stops the gateway at start-up with
``ConfigError`` naming the variable, instead of surfacing later on the request
path. The gateway-wide settings are read here; each policy's own settings are read
by its schema (``from_env``), called from ``load_config`` through the registry, so
they too are checked before any worker starts.

The API key hash secret must be the one the portal hashes with. The portal uses
TOLLWAY_KEY_HASH_SECRET, else SECRET_KEY, else (DEBUG only) a fixed development
value; the gateway reads GATEWAY_KEY_HASH_SECRET first and then falls back along
exactly that chain, so ``make run`` needs no extra setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway import contract
from gateway.exceptions import ConfigError
from tollway.env import EnvError, read, read_bool, read_float, read_int, read_list, read_str
from tollway.redis_url import RedisTarget, parse_redis_url, redis_target

if TYPE_CHECKING:
    from gateway.pipeline import PolicySettings

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
# A new connection must send its first byte within this, or it is closed (an idle
# keep-alive connection is bounded by DEFAULT_IDLE_TIMEOUT_S instead).
DEFAULT_FIRST_BYTE_TIMEOUT_S = 10.0
# A request body must keep up a minimum rate (in the manner of Apache's mod_reqtimeout):
# t seconds into the body, at least (t - DEFAULT_BODY_TIMEOUT_S) * DEFAULT_BODY_MIN_RATE_BPS
# bytes must have arrived, or the request is cut off with 408. A rate of 0 turns it off.
DEFAULT_BODY_TIMEOUT_S = 10.0
DEFAULT_BODY_MIN_RATE_BPS = 500
# A request-target longer than this gets 414. It must stay below the header budget, which
# is how the parser's "line too long" is told apart for the request line and a header.
DEFAULT_MAX_URI_BYTES = 8 * 1024
# The Server header of every response the gateway generates (and of proxied responses
# whose upstream sent none): a name, never a version. "none" omits it.
DEFAULT_SERVER_HEADER = "Tollway"
DEFAULT_SNAPSHOT_PATH = "var/gateway/snapshot.json"
DEFAULT_SNAPSHOT_INTERVAL_S = 10.0
DEFAULT_CACHE_MAX_ENTRIES = 200_000
DEFAULT_CACHE_TTL_S = 60.0
DEFAULT_NEGATIVE_TTL_S = 2.0
DEFAULT_GENERATION_POLL_S = 0.5
DEFAULT_RETRIES = 1
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_COOLDOWN_S = 10.0
# Upstream connection pool, per worker and per upstream (host, port, scheme): at most this
# many connections; a request beyond it waits for a free one (within the version's
# connect timeout). An idle pooled connection is closed after DEFAULT_UPSTREAM_IDLE_S.
DEFAULT_UPSTREAM_MAX_CONNECTIONS = 100
DEFAULT_UPSTREAM_IDLE_S = 15.0
# The fleet roll call (gateway/fleet.py): every node announces itself this often, and is
# forgotten when it has not for DEFAULT_NODE_TTL_S.
DEFAULT_NODE_ANNOUNCE_S = 2.0
DEFAULT_NODE_TTL_S = 10.0
# A node id names this gateway in metering batch ids ("<node>:<worker>:<boot ms>:<seq>"),
# which must be unique across the fleet: so it is short and has no ":".
NODE_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DEV_KEY_HASH_SECRET = "insecure-dev-only-" + "x" * 40  # mirrors portal/settings.py, DEBUG only


@dataclass(frozen=True)
class GatewayConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    redis_url: str = DEFAULT_REDIS_URL
    # redis_url parsed (tollway/redis_url.py): topology, TLS files, credentials.
    redis: RedisTarget = field(default_factory=lambda: parse_redis_url(DEFAULT_REDIS_URL, env={}), hash=False)
    redis_timeout_s: float = DEFAULT_REDIS_TIMEOUT_MS / 1000
    key_hash_secret: bytes = b""
    # The policies named in GATEWAY_POLICIES; the registry adds what they require.
    policies: frozenset[str] = frozenset()
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    first_byte_timeout_s: float = DEFAULT_FIRST_BYTE_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    body_min_rate_bps: int = DEFAULT_BODY_MIN_RATE_BPS
    max_uri_bytes: int = DEFAULT_MAX_URI_BYTES
    server_header: str = DEFAULT_SERVER_HEADER  # "" omits it
    # Authorities (host:port) an absolute-form request target may name; see gateway/edge.py.
    public_hosts: tuple[str, ...] = ()
    snapshot_path: str = DEFAULT_SNAPSHOT_PATH
    snapshot_interval_s: float = DEFAULT_SNAPSHOT_INTERVAL_S
    cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S
    negative_ttl_s: float = DEFAULT_NEGATIVE_TTL_S
    generation_poll_s: float = DEFAULT_GENERATION_POLL_S
    retries: int = DEFAULT_RETRIES
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S
    metrics_dir: str = ""
    # This node's name in the fleet and in metering batch ids (GATEWAY_NODE_ID, default the host name).
    node_id: str = "gateway"
    node_announce_s: float = DEFAULT_NODE_ANNOUNCE_S
    node_ttl_s: float = DEFAULT_NODE_TTL_S
    upstream_max_connections: int = DEFAULT_UPSTREAM_MAX_CONNECTIONS
    upstream_idle_s: float = DEFAULT_UPSTREAM_IDLE_S
    # How many metering streams (partitions by subscription) the fleet writes: a contract
    # setting every gateway and analytics worker must agree on (METERING_PARTITIONS).
    metering_partitions: int = contract.DEFAULT_METERING_PARTITIONS
    # Every registered policy's settings, by policy name (gateway/policies/registry.py).
    policy_settings: Mapping[str, PolicySettings] = field(default_factory=dict, hash=False)


def _key_hash_secret(env: Mapping[str, str]) -> bytes:
    for name in ("GATEWAY_KEY_HASH_SECRET", "TOLLWAY_KEY_HASH_SECRET", "SECRET_KEY"):
        value = read(name, env)
        if value:
            return value.encode("utf-8")
    if read_bool("DEBUG", False, env):
        return _DEV_KEY_HASH_SECRET.encode("utf-8")
    raise ConfigError(
        "GATEWAY_KEY_HASH_SECRET is not set (nor TOLLWAY_KEY_HASH_SECRET or SECRET_KEY, or their _FILE forms); "
        "it must equal the portal's key hash secret"
    )


def _policies(env: Mapping[str, str], known: tuple[str, ...]) -> frozenset[str]:
    names = read_list("GATEWAY_POLICIES", ["all"], env)
    if names == ["all"]:
        return frozenset(known)
    if names in (["none"], ["off"]):
        return frozenset()
    unknown = set(names) - set(known)
    if unknown:
        raise ConfigError(f"GATEWAY_POLICIES names unknown policies: {sorted(unknown)}; known: {known}")
    return frozenset(names)


def _trusted_proxies(env: Mapping[str, str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in read_list("GATEWAY_TRUSTED_PROXIES", (), env):
        try:
            trusted.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"GATEWAY_TRUSTED_PROXIES: {item!r} is not an IP address or network") from exc
    return tuple(trusted)


def _public_hosts(env: Mapping[str, str], host: str, port: int) -> tuple[str, ...]:
    """The authorities an absolute-form target may name: GATEWAY_PUBLIC_HOSTS, by default
    the listening address plus the authority of GATEWAY_PUBLIC_URL (the portal's setting
    for where developers reach the gateway) when it is set."""
    defaults = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    public_url = read("GATEWAY_PUBLIC_URL", env)
    if public_url:
        parts = urlsplit(public_url)
        if parts.netloc:
            scheme_port = "443" if parts.scheme == "https" else "80"
            defaults.append(parts.netloc if parts.port else f"{parts.netloc}:{scheme_port}")
    return tuple(read_list("GATEWAY_PUBLIC_HOSTS", defaults, env))


def _server_header(env: Mapping[str, str]) -> str:
    value = read_str("GATEWAY_SERVER_HEADER", DEFAULT_SERVER_HEADER, env)
    if value.lower() == "none":
        return ""
    if not all(" " <= c <= "~" for c in value):
        raise ConfigError("GATEWAY_SERVER_HEADER must be printable ASCII")
    return value


def _node_id(env: Mapping[str, str]) -> str:
    value = read("GATEWAY_NODE_ID", env)
    if value is None:
        # The host name, made to fit: two hosts whose names differ only in what this
        # replaces should set GATEWAY_NODE_ID.
        return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "gateway"
    if not NODE_ID_RE.fullmatch(value):
        raise ConfigError("GATEWAY_NODE_ID must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
    return value


def load_config(env: Mapping[str, str] | None = None) -> GatewayConfig:
    """The whole configuration, policies' settings included; ConfigError names a bad variable.

    Imports every policy (through the registry), and with them prometheus_client:
    a master that uses PROMETHEUS_MULTIPROC_DIR must set it first.
    """
    # Here, not at the top: the policies import this module.
    from gateway.policies import registry

    env = os.environ if env is None else env
    try:
        redis = redis_target(env, names=("GATEWAY_REDIS_URL", "REDIS_URL"), default=DEFAULT_REDIS_URL)
        host = read_str("GATEWAY_HOST", DEFAULT_HOST, env)
        port = read_int("GATEWAY_PORT", DEFAULT_PORT, env, minimum=0, maximum=65535)
        max_header_bytes = read_int("GATEWAY_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES, env, minimum=1024)
        # The default shrinks with a small header budget, so that setting only that one still works.
        max_uri_bytes = read_int(
            "GATEWAY_MAX_URI_BYTES", min(DEFAULT_MAX_URI_BYTES, max_header_bytes // 2), env, minimum=256
        )
        if max_uri_bytes >= max_header_bytes:
            raise ConfigError(
                f"GATEWAY_MAX_URI_BYTES ({max_uri_bytes}) must be less than "
                f"GATEWAY_MAX_HEADER_BYTES ({max_header_bytes})"
            )
        node_announce_s = read_float("GATEWAY_NODE_ANNOUNCE_S", DEFAULT_NODE_ANNOUNCE_S, env, minimum=0.1)
        node_ttl_s = read_float("GATEWAY_NODE_TTL_S", max(DEFAULT_NODE_TTL_S, 3 * node_announce_s), env, minimum=0.5)
        if node_ttl_s <= node_announce_s:
            raise ConfigError(
                f"GATEWAY_NODE_TTL_S ({node_ttl_s}) must be more than GATEWAY_NODE_ANNOUNCE_S ({node_announce_s})"
            )
        config = GatewayConfig(
            host=host,
            port=port,
            workers=read_int("GATEWAY_WORKERS", os.cpu_count() or 1, env, minimum=1),
            redis_url=redis.url,
            redis=redis,
            redis_timeout_s=read_int("GATEWAY_REDIS_TIMEOUT_MS", DEFAULT_REDIS_TIMEOUT_MS, env, minimum=1) / 1000,
            key_hash_secret=_key_hash_secret(env),
            policies=_policies(env, registry.POLICY_NAMES),
            trusted_proxies=_trusted_proxies(env),
            max_header_bytes=max_header_bytes,
            max_uri_bytes=max_uri_bytes,
            max_response_bytes=read_int("GATEWAY_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES, env, minimum=0),
            header_timeout_s=read_float("GATEWAY_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S, env, minimum=0.1),
            idle_timeout_s=read_float("GATEWAY_IDLE_TIMEOUT_S", DEFAULT_IDLE_TIMEOUT_S, env, minimum=0.1),
            first_byte_timeout_s=read_float(
                "GATEWAY_FIRST_BYTE_TIMEOUT_S", DEFAULT_FIRST_BYTE_TIMEOUT_S, env, minimum=0.1
            ),
            body_timeout_s=read_float("GATEWAY_BODY_TIMEOUT_S", DEFAULT_BODY_TIMEOUT_S, env, minimum=0.1),
            body_min_rate_bps=read_int("GATEWAY_BODY_MIN_RATE_BPS", DEFAULT_BODY_MIN_RATE_BPS, env, minimum=0),
            server_header=_server_header(env),
            public_hosts=_public_hosts(env, host, port),
            snapshot_path=read_str("GATEWAY_SNAPSHOT_PATH", DEFAULT_SNAPSHOT_PATH, env),
            snapshot_interval_s=read_float(
                "GATEWAY_SNAPSHOT_INTERVAL_S", DEFAULT_SNAPSHOT_INTERVAL_S, env, minimum=0.1
            ),
            cache_max_entries=read_int("GATEWAY_CACHE_MAX_ENTRIES", DEFAULT_CACHE_MAX_ENTRIES, env, minimum=1),
            cache_ttl_s=read_float("GATEWAY_CACHE_TTL_S", DEFAULT_CACHE_TTL_S, env, minimum=0.1),
            negative_ttl_s=read_float("GATEWAY_NEGATIVE_TTL_S", DEFAULT_NEGATIVE_TTL_S, env, minimum=0.0),
            generation_poll_s=read_float("GATEWAY_GENERATION_POLL_S", DEFAULT_GENERATION_POLL_S, env, minimum=0.05),
            retries=read_int("GATEWAY_RETRIES", DEFAULT_RETRIES, env, minimum=0),
            breaker_failures=read_int("GATEWAY_BREAKER_FAILURES", DEFAULT_BREAKER_FAILURES, env, minimum=1),
            breaker_cooldown_s=read_float(
                "GATEWAY_BREAKER_COOLDOWN_S", DEFAULT_BREAKER_COOLDOWN_S, env, minimum=0.1
            ),
            metrics_dir=read_str("GATEWAY_METRICS_DIR", "", env),
            node_id=_node_id(env),
            node_announce_s=node_announce_s,
            node_ttl_s=node_ttl_s,
            upstream_max_connections=read_int(
                "GATEWAY_UPSTREAM_MAX_CONNECTIONS", DEFAULT_UPSTREAM_MAX_CONNECTIONS, env, minimum=1
            ),
            upstream_idle_s=read_float("GATEWAY_UPSTREAM_IDLE_S", DEFAULT_UPSTREAM_IDLE_S, env, minimum=0.1),
            metering_partitions=read_int(
                "METERING_PARTITIONS", contract.DEFAULT_METERING_PARTITIONS, env, minimum=1
            ),
        )
        return replace(config, policy_settings=registry.load_settings(env, config))
    except EnvError as exc:
        raise ConfigError(str(exc)) from exc
