"""The one definition of what the portal publishes to Redis and the gateway reads.

Plain Python, no Django: the portal imports this module, the gateway imports it,
analytics imports it to read the metering stream. Bump ``CONTRACT_VERSION`` for
any change that an older reader could misread; every key embeds it, so two
versions can run side by side during a rolling upgrade.

Every JSON record is read with ``decode_record`` (msgspec, typed): fields the
reader does not know are ignored, missing fields take their defaults, and a value
of the wrong type raises ``ContractDecodeError`` (a ValueError) naming the field.
So a change that only ADDS a field with a default needs no version bump: readers
at vN ignore it, and vN+1 readers of vN records get the default.

Redis layout (``v`` = CONTRACT_VERSION)::

    tollway:v{v}:routes                  HASH  "{api_slug}/{version}" -> RouteRecord JSON
    tollway:v{v}:app:{application_id}    STR   ApplicationRecord JSON (subscriptions, limits)
    tollway:v{v}:key:{key_hash}          STR   KeyRecord JSON (hash = HMAC-SHA256 of the full key)
    tollway:v{v}:token:{token_hash}      STR   TokenRecord JSON (hash = SHA-256 of the token), EX = its lifetime
    tollway:v{v}:generation              STR   integer, INCR on every publish
    tollway:v{v}:{fleet}:nodes           ZSET  gateway node id -> expiry (gateway only, see gateway/fleet.py)
    tollway:v{v}:{fleet}:workers         HASH  gateway node id -> its worker count
    tollway:v{v}:invalidate              PUBSUB channel, Invalidation JSON
    tollway:v{v}:metering                STREAM legacy (before batches): one entry per request, fields = METERING_FIELDS
    tollway:v{v}:metering:{m<p>}         STREAM partition p of METERING_PARTITIONS: one entry per batch,
                                         field "b" = MeteringBatch as MessagePack (encode_batch/decode_batch)

Rate-limit and quota counters belong to the gateway alone; they share the hash
tag ``{s:<subscription_id>}`` so that one Lua script can touch all of them on a
Redis Cluster.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar, cast

import msgspec

from gateway.route_policies import NO_POLICIES, IpRules, VersionPolicies

CONTRACT_VERSION = 1
PREFIX = f"tollway:v{CONTRACT_VERSION}"

ROUTES_KEY = f"{PREFIX}:routes"
GENERATION_KEY = f"{PREFIX}:generation"
INVALIDATION_CHANNEL = f"{PREFIX}:invalidate"
# Legacy: one entry per request, written by gateways from before metering batches.
# Analytics drains it (each entry as a one-event batch) so a rolling upgrade loses nothing.
METERING_STREAM = f"{PREFIX}:metering"
# Consumer group that analytics uses on every metering stream.
METERING_GROUP = "analytics"
# How many metering partitions the fleet writes and analytics reads. Part of the
# contract: every gateway and every analytics worker must agree (env METERING_PARTITIONS).
DEFAULT_METERING_PARTITIONS = 4
METERING_BATCH_FIELD = "b"
# The gateway fleet's roll call (gateway/fleet.py), one hash tag so one script touches both.
FLEET_NODES_KEY = f"{PREFIX}:{{fleet}}:nodes"  # ZSET node id -> expiry, ms on Redis's clock
FLEET_WORKERS_KEY = f"{PREFIX}:{{fleet}}:workers"  # HASH node id -> worker count

LifecycleState = Literal["draft", "published", "deprecated", "retired"]
RedisFailureMode = Literal["fail_closed", "fail_open"]
KeyStatus = Literal["active", "revoked"]
SubscriptionStatus = Literal["pending", "active", "suspended", "cancelled"]
InvalidationKind = Literal["route", "app", "key", "token", "all"]

# API key format, in the manner of GitHub's tokens: a recognisable prefix that
# secret scanners can match, a random body and a CRC32 checksum so that a
# scanner can tell a real key from a look-alike without asking us.
KEY_PREFIX = "tw_"
KEY_RANDOM_CHARS = 32  # base62, ~190 bits of entropy
KEY_CHECKSUM_CHARS = 6
KEY_LENGTH = len(KEY_PREFIX) + KEY_RANDOM_CHARS + KEY_CHECKSUM_CHARS
KEY_LOOKUP_PREFIX_CHARS = 8  # random chars kept, with KEY_PREFIX, as the displayable prefix
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + f"[0-9A-Za-z]{{{KEY_RANDOM_CHARS + KEY_CHECKSUM_CHARS}}}")


def route_field(api_slug: str, version: str) -> str:
    return f"{api_slug}/{version}"


def health_key(node_id: str) -> str:
    """HASH "api/version target" -> JSON {"healthy", "reason", "at"}: a gateway node's view of
    its upstream targets (gateway/upstream_health.py), expiring with the node."""
    return f"{PREFIX}:health:{{{node_id}}}"


def openapi_key(version_id: int) -> str:
    """The version's OpenAPI document as compact JSON, while its request_validation is on."""
    return f"{PREFIX}:openapi:{version_id}"


def openapi_payload(document: dict[str, Any]) -> tuple[bytes, str]:
    """What the portal writes at openapi_key(), and its SHA-256 for RouteRecord.openapi_sha256."""
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return raw, hashlib.sha256(raw).hexdigest()


def app_key(application_id: int) -> str:
    return f"{PREFIX}:app:{application_id}"


def key_key(key_hash: str) -> str:
    return f"{PREFIX}:key:{key_hash}"


def token_key(token_hash: str) -> str:
    return f"{PREFIX}:token:{token_hash}"


def subscription_hash_tag(subscription_id: int) -> str:
    """Redis Cluster hash tag shared by every counter of one subscription."""
    return f"{{s:{subscription_id}}}"


def limiter_key_base(subscription_id: int) -> str:
    """Prefix of a subscription's limiter keys: ``…:s`` and ``…:m`` (rate windows) and
    ``…:q`` (quota), under which the limiter's Lua script derives the calendar counters."""
    return f"{PREFIX}:limit:{subscription_hash_tag(subscription_id)}"


def quota_day_counter_key(subscription_id: int, epoch_day: int) -> str:
    """The gateway's count of requests admitted on one UTC day (days since 1970-01-01).
    Written by gateway/policies/rate_limit/limiter.lua; read by analytics' reconciliation."""
    return f"{limiter_key_base(subscription_id)}:q:d:{epoch_day}"


def base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars))


# Every two-digit base62 string, by value: the checksum (a CRC-32, which fits six digits)
# is three lookups instead of six divmods; the gateway checks one on every request.
_BASE62_PAIRS = tuple(a + b for a in BASE62 for b in BASE62)
assert KEY_CHECKSUM_CHARS == 6
assert 62**6 > 2**32


def key_checksum(random_part: str) -> str:
    """base62(crc32(random_part), KEY_CHECKSUM_CHARS)."""
    high, low = divmod(zlib.crc32(random_part.encode("ascii")), 3844)
    high, middle = divmod(high, 3844)
    return _BASE62_PAIRS[high] + _BASE62_PAIRS[middle] + _BASE62_PAIRS[low]


def key_is_well_formed(key: str) -> bool:
    """Cheap shape and checksum test, done before any hashing or lookup."""
    # The regex first: it is the cheap test, and the gateway runs this on every request.
    if len(key) != KEY_LENGTH or not _KEY_SHAPE.fullmatch(key):
        return False
    body = key[len(KEY_PREFIX) :]
    random_part, checksum = body[:KEY_RANDOM_CHARS], body[KEY_RANDOM_CHARS:]
    return hmac.compare_digest(key_checksum(random_part), checksum)


def key_display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + KEY_LOOKUP_PREFIX_CHARS]


def key_hash(key: str, secret: bytes) -> str:
    """Keyed hash under which a key is stored and looked up; never reversible."""
    return hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


class KeyHasher:
    """``key_hash`` with the secret's HMAC state computed once: each hash copies it (half
    the cost of ``hmac.new``, which pads the secret and starts two hashes every time).
    The gateway hashes the presented key on every request."""

    __slots__ = ("_base",)

    def __init__(self, secret: bytes) -> None:
        self._base = hmac.new(secret, digestmod=hashlib.sha256)

    def __call__(self, key: str) -> str:
        mac = self._base.copy()
        mac.update(key.encode("utf-8"))
        return mac.hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Upstream:
    url: str  # scheme://host:port[/base-path]
    weight: int = 1


# Methods a version accepts unless its operator narrows the list. TRACE and CONNECT are
# never allowed: TRACE reflects the request (credentials included) back to the caller,
# CONNECT would turn the gateway into a tunnel.
DEFAULT_ALLOWED_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
NEVER_ALLOWED_METHODS: frozenset[str] = frozenset({"TRACE", "CONNECT"})
# Response headers a browser script may read: the rate-limit headers (so the portal's
# try-it can show them), lifecycle headers and the request id.
DEFAULT_CORS_EXPOSED_HEADERS: tuple[str, ...] = (
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Request-ID",
    "Deprecation",
    "Sunset",
    "Link",
)
# Request headers a browser may send cross-origin; the gateway's credential headers are
# always added to these by the cors policy.
DEFAULT_CORS_ALLOWED_HEADERS: tuple[str, ...] = ("Accept", "Content-Type", "X-API-Key", "Authorization", "X-Request-ID")
DEFAULT_CORS_MAX_AGE_S = 600
MAX_CORS_MAX_AGE_S = 86400  # Firefox caps a preflight at a day, Chromium at two hours


@dataclass(frozen=True)
class CorsPolicy:
    """CORS for one API version. No origins means no CORS headers at all (what a record
    written before this field existed decodes to). The publisher always includes the
    portal's own origin, so that its try-it works."""

    allowed_origins: tuple[str, ...] = ()  # exact origins, "scheme://host[:port]"; "*" = any (never with credentials)
    allowed_methods: tuple[str, ...] = DEFAULT_ALLOWED_METHODS
    allowed_headers: tuple[str, ...] = DEFAULT_CORS_ALLOWED_HEADERS
    exposed_headers: tuple[str, ...] = DEFAULT_CORS_EXPOSED_HEADERS
    max_age_s: int = DEFAULT_CORS_MAX_AGE_S
    allow_credentials: bool = False

    def allows_origin(self, origin: str) -> bool:
        if origin in self.allowed_origins:
            return True
        return "*" in self.allowed_origins and not self.allow_credentials


@dataclass(frozen=True)
class RouteRecord:
    api_id: int
    api_slug: str
    version: str
    version_id: int
    state: LifecycleState
    upstreams: tuple[Upstream, ...]
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    allow_query_key: bool = False
    redis_failure_mode: RedisFailureMode = "fail_closed"
    deprecated_at: str | None = None  # ISO 8601 UTC
    sunset_at: str | None = None  # ISO 8601 UTC
    successor_version: str | None = None  # label, e.g. "v2"
    allowed_methods: tuple[str, ...] = DEFAULT_ALLOWED_METHODS  # anything else: 405 with Allow
    cors: CorsPolicy = CorsPolicy()
    # The version's edge policies (gateway/route_policies.py); all off by default.
    policies: VersionPolicies = NO_POLICIES
    # While request_validation is on: the SHA-256 of the version's OpenAPI document, which
    # is published apart, at openapi_key(version_id) (documents can be large; routes are
    # all reloaded on every change). The gateway compiles it once per hash.
    openapi_sha256: str | None = None

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> RouteRecord:
        # Lenient across a rolling upgrade: unknown fields are ignored, missing ones
        # (a record written by an older portal) take their defaults.
        return decode_record(cls, raw)


@dataclass(frozen=True)
class Limits:
    """None means unlimited for that dimension."""

    rate_per_second: int | None = None
    rate_per_minute: int | None = None
    burst: int = 0
    quota_per_day: int | None = None
    quota_per_month: int | None = None


@dataclass(frozen=True)
class SubscriptionGrant:
    subscription_id: int
    api_id: int
    plan_id: int
    plan_slug: str
    status: SubscriptionStatus
    limits: Limits
    override_limits: Limits | None = None
    override_expires_at: str | None = None  # ISO 8601 UTC; override ignored after it


@dataclass(frozen=True)
class ApplicationRecord:
    application_id: int
    organization_id: int
    name: str
    # Keyed by api_id as a string (JSON object keys are strings).
    subscriptions: dict[str, SubscriptionGrant] = field(default_factory=dict)
    # Replaces the ip_rules of every version this application calls, when set.
    ip_rules: IpRules | None = None

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ApplicationRecord:
        return decode_record(cls, raw)


@dataclass(frozen=True)
class KeyRecord:
    key_id: int
    prefix: str
    application_id: int
    status: KeyStatus
    expires_at: str | None = None  # ISO 8601 UTC
    grace_until: str | None = None  # set on a rotated-out key: valid until then

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> KeyRecord:
        return decode_record(cls, raw)


@dataclass(frozen=True)
class TokenRecord:
    application_id: int
    client_id: str
    scope: str
    expires_at: str  # ISO 8601 UTC
    revoked: bool = False

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TokenRecord:
        return decode_record(cls, raw)


@dataclass(frozen=True)
class Invalidation:
    kind: InvalidationKind
    id: str = ""  # route field, application id, key hash or token hash
    generation: int = 0

    def to_json(self) -> str:
        return _dumps(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Invalidation:
        # The kind is read as any string: one this gateway does not know (from a newer
        # portal) is applied as "all" (gateway/state.py), never refused.
        wire = decode_record(_InvalidationWire, raw)
        return cls(kind=cast(InvalidationKind, wire.kind), id=wire.id, generation=wire.generation)


@dataclass(frozen=True)
class _InvalidationWire:
    kind: str
    id: str = ""
    generation: int = 0


# Metering: one stream entry per request. Every value is a string in the
# stream; these are the field names, in order, and how analytics parses them.
METERING_FIELDS: tuple[str, ...] = (
    "id",  # uuid4 hex, unique per request; analytics dedupes on it
    "ts",  # request start, Unix epoch milliseconds (int)
    "api_id",  # int, "" when the route is unknown
    "api",  # slug
    "version",  # label
    "application_id",  # int or ""
    "key_prefix",  # display prefix or ""
    "subscription_id",  # int or ""
    "plan_id",  # int or ""
    "method",
    "status",  # int
    "decision",  # allowed, unauthenticated, forbidden, rate_limited, quota_exceeded, not_found, gone,
    # redis_unavailable, bad_request, upstream_error or preflight (a CORS preflight the gateway answered)
    "latency_ms",  # float
    "bytes_in",  # int
    "bytes_out",  # int
)


@dataclass(frozen=True)
class MeteringEvent:
    id: str
    ts: int
    api_id: int | None
    api: str
    version: str
    application_id: int | None
    key_prefix: str
    subscription_id: int | None
    plan_id: int | None
    method: str
    status: int
    decision: str
    latency_ms: float
    bytes_in: int
    bytes_out: int

    def to_fields(self) -> dict[str, str]:
        return {k: "" if v is None else str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_fields(cls, fields: dict[str, str] | dict[bytes, bytes]) -> MeteringEvent:
        f = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }

        def opt_int(name: str) -> int | None:
            return int(f[name]) if f.get(name) else None

        return cls(
            id=f["id"],
            ts=int(f["ts"]),
            api_id=opt_int("api_id"),
            api=f.get("api", ""),
            version=f.get("version", ""),
            application_id=opt_int("application_id"),
            key_prefix=f.get("key_prefix", ""),
            subscription_id=opt_int("subscription_id"),
            plan_id=opt_int("plan_id"),
            method=f.get("method", ""),
            status=int(f["status"]),
            decision=f.get("decision", ""),
            latency_ms=float(f.get("latency_ms") or 0),
            bytes_in=int(f.get("bytes_in") or 0),
            bytes_out=int(f.get("bytes_out") or 0),
        )


class ContractDecodeError(ValueError):
    """A record or message that cannot be read: not JSON, a required field missing, or a
    field of the wrong type. The message names the record type and the field."""


_T = TypeVar("_T")
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode_record(cls: type[_T], raw: str | bytes) -> _T:
    """Decode one JSON record of the contract, the way every reader does it (the rolling-
    upgrade rule): fields this version does not know are ignored, fields missing from
    an older writer take their defaults, and a value of the wrong type (a string where
    an integer belongs, say) raises ContractDecodeError instead of slipping through."""
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.json.Decoder(cls)
    try:
        return cast(_T, decoder.decode(raw))
    except msgspec.DecodeError as exc:  # ValidationError included
        raise ContractDecodeError(f"{cls.__name__.lstrip('_')}: {exc}") from exc


def _dumps(obj: Any) -> str:
    return json.dumps(asdict(obj), separators=(",", ":"), sort_keys=True)


# --- Metering batches -----------------------------------------------------------------
#
# A gateway worker sends its requests as batches: one stream entry per batch, in the
# partition of the subscription (so one analytics consumer owns every rollup row of a
# subscription). Structs are encoded as MessagePack arrays: compact, and lenient across
# a rolling upgrade, since msgspec ignores trailing fields it does not know and gives
# missing trailing fields their defaults. So: only ever APPEND fields, with defaults.

METERING_BATCH_VERSION = 1
OUTCOME_UNKNOWN = "unknown"  # admitted, then the worker died before the response was known


class MeteredRequest(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One request as metering sees it. 0 / "" mean "none" (no route, no application...)."""

    ts: int  # request start, Unix epoch milliseconds
    api_id: int
    api: str  # slug
    version: str  # label
    application_id: int
    key_prefix: str
    subscription_id: int
    plan_id: int
    method: str
    status: int  # HTTP status sent; 0 when the outcome is unknown
    decision: str  # allowed, unauthenticated, forbidden, rate_limited, quota_exceeded, not_found, gone,
    # redis_unavailable, bad_request, upstream_error or preflight (a CORS preflight the gateway answered)
    latency_ms: float
    bytes_in: int
    bytes_out: int
    endpoint: str = ""  # bounded label of the path within the version (see the gateway's metering policy)
    outcome: str = ""  # "" = known; OUTCOME_UNKNOWN = admitted but the worker died mid-request


class MeteringBatch(msgspec.Struct, array_like=True, frozen=True, gc=False):
    v: int  # METERING_BATCH_VERSION
    id: str  # unique across the fleet and stable across replays: "<node>:<worker>:<boot ms>:<seq>"
    requests: list[MeteredRequest]


class MeteringDecodeError(ValueError):
    """A batch that cannot be read: bad encoding, unknown version or impossible values."""


_batch_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(MeteringBatch)
MAX_BATCH_ID_CHARS = 120


def metering_partition(subscription_id: int, partitions: int) -> int:
    """Partition of a request: by subscription, so one consumer writes each subscription's rows."""
    return subscription_id % partitions if partitions > 1 else 0


def metering_stream(partition: int) -> str:
    # Its own hash tag per partition, so partitions spread over a Redis Cluster.
    return f"{PREFIX}:metering:{{m{partition}}}"


def encode_batch(batch: MeteringBatch) -> bytes:
    return _batch_encoder.encode(batch)


def decode_batch(raw: bytes) -> MeteringBatch:
    """Decode and check a batch; raise MeteringDecodeError when it is unusable."""
    try:
        batch = _batch_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MeteringDecodeError(f"bad encoding: {exc}") from exc
    if batch.v != METERING_BATCH_VERSION:
        raise MeteringDecodeError(f"unknown batch version {batch.v}")
    if not batch.id or len(batch.id) > MAX_BATCH_ID_CHARS:
        raise MeteringDecodeError("batch id missing or too long")
    for index, r in enumerate(batch.requests):
        problem = _impossible(r)
        if problem:
            raise MeteringDecodeError(f"request {index}: {problem}")
    return batch


def _impossible(r: MeteredRequest) -> str:
    if r.ts <= 0 or r.ts > 10**13:
        return f"ts {r.ts} out of range"
    if min(r.api_id, r.application_id, r.subscription_id, r.plan_id) < 0:
        return "negative id"
    if not (r.status == 0 or 100 <= r.status <= 599):
        return f"status {r.status} out of range"
    if r.status == 0 and r.outcome != OUTCOME_UNKNOWN:
        return "status 0 without an unknown outcome"
    # An unknown decision is not impossible (a newer gateway may add one); it is not "allowed", so not billed.
    if not r.decision or len(r.decision) > 40:
        return "decision missing or too long"
    if not math.isfinite(r.latency_ms):  # NaN or infinity would poison every sum it joins
        return "non-finite latency"
    if r.latency_ms < 0 or r.bytes_in < 0 or r.bytes_out < 0:
        return "negative latency or size"
    return ""


def legacy_batch(stream_id: str, event: MeteringEvent) -> MeteringBatch:
    """An entry of the legacy per-request stream as a one-request batch, deduplicated by
    the event's own id (so a legacy entry read twice still counts once)."""
    return MeteringBatch(
        v=METERING_BATCH_VERSION,
        id=f"legacy:{event.id}",
        requests=[
            MeteredRequest(
                ts=event.ts, api_id=event.api_id or 0, api=event.api, version=event.version,
                application_id=event.application_id or 0, key_prefix=event.key_prefix,
                subscription_id=event.subscription_id or 0, plan_id=event.plan_id or 0,
                method=event.method, status=event.status, decision=event.decision,
                latency_ms=event.latency_ms, bytes_in=event.bytes_in, bytes_out=event.bytes_out,
            )
        ],
    )
