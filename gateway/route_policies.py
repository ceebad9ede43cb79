"""A version's edge policies: the one typed schema the portal validates with and the gateway reads.

Plain Python (dataclasses, decoded with msgspec), no Django: the portal imports it to
check what an operator typed (admin, REST, configuration file) and stores the object as
given; the publisher puts it in ``contract.RouteRecord.policies`` (and an application's
``ip_rules`` in ``contract.ApplicationRecord``); the gateway's policies read it from
there. Everything is off by default, and a record written before these fields existed
decodes to "off".

The JSON shape (every key optional)::

    {"request_transform": {"add_headers": {"X-Caller": "$(application_id)"},
                           "set_headers": {...}, "remove_headers": ["X-Debug"],
                           "rename_headers": {"X-Old": "X-New"},
                           "add_query": {"src": "gw"}, "remove_query": ["debug"],
                           "rename_query": {"q": "query"},
                           "path_prefix": {"match": "/public", "replace": ""}},
     "response_transform": {"add_headers": ..., "set_headers": ..., "remove_headers": ...,
                            "rename_headers": ...},
     "ip_rules": {"allow": ["203.0.113.0/24"], "deny": ["203.0.113.7"]},
     "upstream_health": {"active": {"path": "/healthz", "interval_s": 5, "timeout_s": 2,
                                    "healthy_threshold": 2, "unhealthy_threshold": 3},
                         "passive": {"failures": 5, "eject_s": 30},
                         "retries": 1, "breaker_failures": 5, "breaker_cooldown_s": 10},
     "request_validation": "off" | "report" | "enforce",
     "cache": {"ttl_s": 60, "default_ttl_s": 10, "shared": false},
     "websocket": {"idle_timeout_s": 60, "max_lifetime_s": 3600, "max_message_bytes": 1048576}}

Values of headers and query parameters may use the caller's context as ``$(name)``, with
the names in ``TEMPLATE_NAMES``; ``$$`` is a literal ``$``. A value that comes out empty
(no application on the request, say) is not sent at all.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

import msgspec

ValidationMode = Literal["off", "report", "enforce"]
VALIDATION_MODES: tuple[str, ...] = ("off", "report", "enforce")

# $(name) in a header or query value: the caller's context at request time.
TEMPLATE_NAMES: tuple[str, ...] = (
    "application_id",
    "organization_id",
    "plan",
    "subscription_id",
    "key_prefix",
    "client_id",
    "request_id",
)
_TEMPLATE = re.compile(r"\$\$|\$\(([^)]*)\)")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_QUERY_NAME = re.compile(r"^[^\s&=#]{1,200}$")

MAX_ENTRIES = 50
MAX_VALUE_CHARS = 2048
MAX_CIDRS = 500

# Hop-by-hop headers: RFC 9110 §7.6.1 plus the older RFC 2616 set that proxies still meet.
# The proxy strips them on both sides (gateway/proxy.py imports this set).
HOP_BY_HOP_HEADERS: frozenset[str] = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# No transform may set them, nor Expect, which the gateway answers itself.
HOP_BY_HOP: frozenset[str] = HOP_BY_HOP_HEADERS | {"expect"}
# The gateway's own request headers (set from what it saw, or credentials it strips): no
# transform may add, set, remove or rename them, or a caller could be impersonated.
GATEWAY_REQUEST_HEADERS: frozenset[str] = frozenset(
    {"host", "content-length", "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
     "forwarded", "x-api-key"}
)
GATEWAY_REQUEST_PREFIXES: tuple[str, ...] = ("x-tollway-",)
# The gateway's own response headers: the rate-limit, lifecycle, CORS and request-id headers.
GATEWAY_RESPONSE_HEADERS: frozenset[str] = frozenset(
    {"content-length", "x-request-id", "ratelimit", "ratelimit-policy", "retry-after", "deprecation", "sunset",
     "cache-status"}
)
GATEWAY_RESPONSE_PREFIXES: tuple[str, ...] = ("x-ratelimit-", "access-control-", "x-tollway-")


@dataclass(frozen=True)
class PathPrefix:
    match: str  # "/public": the upstream path must start with it (whole segments)
    replace: str = ""  # "" strips it; "/v2" replaces it


@dataclass(frozen=True)
class RequestTransform:
    add_headers: dict[str, str] = field(default_factory=dict)  # only when the request has none of that name
    set_headers: dict[str, str] = field(default_factory=dict)  # replaces any the client sent
    remove_headers: tuple[str, ...] = ()
    rename_headers: dict[str, str] = field(default_factory=dict)  # old name -> new name
    add_query: dict[str, str] = field(default_factory=dict)  # only when the query has none of that name
    remove_query: tuple[str, ...] = ()
    rename_query: dict[str, str] = field(default_factory=dict)
    path_prefix: PathPrefix | None = None


@dataclass(frozen=True)
class ResponseTransform:
    add_headers: dict[str, str] = field(default_factory=dict)
    set_headers: dict[str, str] = field(default_factory=dict)
    remove_headers: tuple[str, ...] = ()
    rename_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IpRules:
    """Deny wins; with an allow list, only addresses in it pass. Empty lists: no rule."""

    allow: tuple[str, ...] = ()  # CIDRs or single addresses
    deny: tuple[str, ...] = ()


MAX_CACHE_TTL_S = 86_400


@dataclass(frozen=True)
class ResponseCache:
    """GET and HEAD responses kept in each worker's memory (the cache policy)."""

    ttl_s: int = 60  # the ceiling: no response is served from the cache for longer
    default_ttl_s: int | None = None  # for responses without max-age/s-maxage; None: those are not stored
    shared: bool = False  # one entry for every application; otherwise the application is part of the key


MAX_WEBSOCKET_LIFETIME_S = 86_400
MAX_WEBSOCKET_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class WebSocket:
    """Upgrade requests are proxied (the websocket policy); without it they are refused."""

    idle_timeout_s: int = 60  # closed after this long without a message either way
    max_lifetime_s: int = 3600  # closed this long after the handshake, however busy
    max_message_bytes: int = 1024 * 1024  # a larger message closes the connection (1009)


@dataclass(frozen=True)
class ActiveHealthCheck:
    path: str = "/"  # GET on each target's base URL + this; 2xx or 3xx passes
    interval_s: float = 5.0
    timeout_s: float = 2.0
    healthy_threshold: int = 2  # consecutive passes that bring an unhealthy target back
    unhealthy_threshold: int = 3  # consecutive failures that take a target out


@dataclass(frozen=True)
class PassiveEjection:
    failures: int = 5  # consecutive connect errors, timeouts or 5xx answers of real traffic
    eject_s: float = 30.0  # out of the rotation this long, then back


@dataclass(frozen=True)
class UpstreamHealth:
    """Unset retries/breaker fields keep GATEWAY_RETRIES and GATEWAY_BREAKER_*."""

    active: ActiveHealthCheck | None = None
    passive: PassiveEjection | None = None
    retries: int | None = None  # idempotent methods without a body only, as the global setting
    breaker_failures: int | None = None
    breaker_cooldown_s: float | None = None


@dataclass(frozen=True)
class VersionPolicies:
    request_transform: RequestTransform | None = None
    response_transform: ResponseTransform | None = None
    ip_rules: IpRules | None = None
    upstream_health: UpstreamHealth | None = None
    request_validation: ValidationMode = "off"
    cache: ResponseCache | None = None
    websocket: WebSocket | None = None

    @property
    def active(self) -> bool:
        return self != NO_POLICIES


NO_POLICIES = VersionPolicies()


class PoliciesInvalid(ValueError):
    """What is wrong with a policies object: one message per problem, each starting with
    the dotted path of the offending field (``request_transform.set_headers.Connection``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def policies_check(data: object, *, has_openapi: bool = False) -> VersionPolicies:
    """The typed policies of ``data`` (the JSON an operator gave), or PoliciesInvalid naming
    every problem: unknown or mistyped fields, malformed CIDRs, unknown $(names), transforms
    of hop-by-hop or gateway headers, validation without an OpenAPI document (``has_openapi``
    says whether the version has one; not said, it has none)."""
    if data is None:
        data = {}
    problems = _unknown_fields(data, VersionPolicies, "")
    if problems:
        raise PoliciesInvalid(problems)
    try:
        policies = msgspec.convert(data, VersionPolicies)
    except msgspec.ValidationError as exc:
        raise PoliciesInvalid([_msgspec_problem(str(exc))]) from None
    if policies.request_transform is not None:
        problems += _request_transform_problems(policies.request_transform)
    if policies.response_transform is not None:
        problems += _header_problems(
            policies.response_transform, "response_transform", GATEWAY_RESPONSE_HEADERS, GATEWAY_RESPONSE_PREFIXES
        )
    if policies.ip_rules is not None:
        problems += ip_rules_problems(policies.ip_rules, "ip_rules")
    if policies.upstream_health is not None:
        problems += upstream_health_problems(policies.upstream_health)
    if policies.request_validation != "off" and not has_openapi:
        problems.append(
            "request_validation: this version has no OpenAPI document to validate against; upload one first."
        )
    if policies.cache is not None:
        problems += cache_problems(policies.cache)
    if policies.websocket is not None:
        problems += websocket_problems(policies.websocket)
    if problems:
        raise PoliciesInvalid(problems)
    return policies


def policies_from(data: object) -> VersionPolicies:
    """The policies stored for a version, for publishing: they were checked when saved."""
    if not data:
        return NO_POLICIES
    return msgspec.convert(data, VersionPolicies)


def ip_rules_check(data: object) -> IpRules | None:
    """An application's IP rules (an override of its versions'), or PoliciesInvalid."""
    if data is None or data == {}:
        return None
    problems = _unknown_fields(data, IpRules, "")
    if problems:
        raise PoliciesInvalid(problems)
    try:
        rules = msgspec.convert(data, IpRules)
    except msgspec.ValidationError as exc:
        raise PoliciesInvalid([_msgspec_problem(str(exc))]) from None
    problems = ip_rules_problems(rules, "")
    if problems:
        raise PoliciesInvalid(problems)
    return rules


def _msgspec_problem(message: str) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.request_transform.add_headers[...]`".
    text, _, where = message.partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    return f"{path}: {text}" if path else text


def _unknown_fields(data: object, cls: type[Any], path: str) -> list[str]:
    """msgspec ignores fields it does not know (the rolling-upgrade rule); an operator's
    typo must not be silently ignored, so the portal checks names first."""
    if not isinstance(data, dict):
        return []  # msgspec names the wrong type
    hints = typing.get_type_hints(cls)
    problems = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in hints:
            known = ", ".join(f.name for f in fields(cls))
            problems.append(f"{where}: unknown field; known fields: {known}.")
            continue
        for candidate in typing.get_args(hints[key]) or (hints[key],):
            if is_dataclass(candidate):
                problems += _unknown_fields(value, candidate, where)  # type: ignore[arg-type]
    return problems


def template_problems(value: str) -> list[str]:
    problems = []
    for match in _TEMPLATE.finditer(value):
        name = match.group(1)
        if name is not None and name not in TEMPLATE_NAMES:
            problems.append(f"$({name}) is not a known name; use one of {', '.join(TEMPLATE_NAMES)}")
    return problems


def _reserved(name: str, exact: frozenset[str], prefixes: tuple[str, ...]) -> str:
    lower = name.lower()
    if lower in HOP_BY_HOP:
        return f"{name} is a hop-by-hop header: the gateway never forwards it"
    if lower in exact or lower.startswith(prefixes):
        return f"{name} is one of the gateway's own headers: a transform may not touch it"
    return ""


def _header_problems(
    transform: RequestTransform | ResponseTransform, where: str, exact: frozenset[str], prefixes: tuple[str, ...]
) -> list[str]:
    problems: list[str] = []
    named: list[tuple[str, str]] = []  # (path, header name)
    for op in ("add_headers", "set_headers"):
        values: dict[str, str] = getattr(transform, op)
        if len(values) > MAX_ENTRIES:
            problems.append(f"{where}.{op}: at most {MAX_ENTRIES} headers")
        for name, value in values.items():
            named.append((f"{where}.{op}.{name}", name))
            problems += [f"{where}.{op}.{name}: {p}" for p in _value_problems(value)]
    for name in transform.remove_headers:
        named.append((f"{where}.remove_headers", name))
    for old, new in transform.rename_headers.items():
        named.append((f"{where}.rename_headers.{old}", old))
        named.append((f"{where}.rename_headers.{old}", new))
    if len(transform.remove_headers) > MAX_ENTRIES or len(transform.rename_headers) > MAX_ENTRIES:
        problems.append(f"{where}: at most {MAX_ENTRIES} headers to remove or rename")
    for path, name in named:
        if not _TOKEN.match(name):
            problems.append(f"{path}: {name!r} is not a header name")
            continue
        reserved = _reserved(name, exact, prefixes)
        if reserved:
            problems.append(f"{path}: {reserved}")
    return problems


def _value_problems(value: str) -> list[str]:
    if len(value) > MAX_VALUE_CHARS:
        return [f"at most {MAX_VALUE_CHARS} characters"]
    if any(c in value for c in "\r\n\0") or not value.isprintable():
        return ["only printable characters (no line breaks)"]
    return template_problems(value)


def _request_transform_problems(transform: RequestTransform) -> list[str]:
    where = "request_transform"
    problems = _header_problems(transform, where, GATEWAY_REQUEST_HEADERS, GATEWAY_REQUEST_PREFIXES)
    for name, value in transform.add_query.items():
        problems += [f"{where}.add_query.{name}: {p}" for p in _value_problems(value)]
    query_names = [
        *((f"{where}.add_query", n) for n in transform.add_query),
        *((f"{where}.remove_query", n) for n in transform.remove_query),
        *((f"{where}.rename_query", n) for pair in transform.rename_query.items() for n in pair),
    ]
    for path, name in query_names:
        if not _QUERY_NAME.match(name):
            problems.append(f"{path}: {name!r} is not a query parameter name (no spaces, &, = or #)")
    prefix = transform.path_prefix
    if prefix is not None:
        for part, value, empty_ok in (("match", prefix.match, False), ("replace", prefix.replace, True)):
            if value == "" and empty_ok:
                continue
            if (
                not value.startswith("/")
                or any(c in value for c in "?#%\\ ")
                or "/../" in value + "/"
                or "/./" in value + "/"
                or "//" in value
                or not value.isprintable()
            ):
                problems.append(
                    f"{where}.path_prefix.{part}: {value!r} is not a path prefix: start with /, "
                    "no ., .., //, ?, #, % or spaces"
                )
    return problems


def ip_rules_problems(rules: IpRules, where: str) -> list[str]:
    problems = []
    for part in ("allow", "deny"):
        items: tuple[str, ...] = getattr(rules, part)
        path = f"{where}.{part}" if where else part
        if len(items) > MAX_CIDRS:
            problems.append(f"{path}: at most {MAX_CIDRS} entries")
        for item in items:
            problem = cidr_problem(item)
            if problem:
                problems.append(f"{path}: {problem}")
    return problems


def cidr_problem(item: str) -> str:
    try:
        ipaddress.ip_network(item, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(item, strict=False)
            return f"{item!r} has host bits set: write {fixed}"
        return f"{item!r} is not an IP address or CIDR network (e.g. 203.0.113.0/24 or 2001:db8::/32)"
    return ""


MIN_CHECK_INTERVAL_S = 0.1  # a shorter interval would be a load test of the upstream
MAX_RETRIES = 10
_HEALTH_PATH = re.compile(r"^/[!-~]*$")  # printable, no spaces


def upstream_health_problems(health: UpstreamHealth) -> list[str]:
    where = "upstream_health"
    problems = []
    positive: list[tuple[str, float]] = []
    at_least_one: list[tuple[str, int]] = []
    if health.active is not None:
        active = health.active
        if not _HEALTH_PATH.match(active.path) or "#" in active.path or len(active.path) > MAX_VALUE_CHARS:
            problems.append(f"{where}.active.path: {active.path!r} is not a path: start with /, no spaces or #")
        if active.interval_s < MIN_CHECK_INTERVAL_S:
            problems.append(f"{where}.active.interval_s: must be at least {MIN_CHECK_INTERVAL_S} seconds")
        positive.append(("active.timeout_s", active.timeout_s))
        at_least_one += [("active.healthy_threshold", active.healthy_threshold),
                         ("active.unhealthy_threshold", active.unhealthy_threshold)]
    if health.passive is not None:
        positive.append(("passive.eject_s", health.passive.eject_s))
        at_least_one.append(("passive.failures", health.passive.failures))
    if health.breaker_cooldown_s is not None:
        positive.append(("breaker_cooldown_s", health.breaker_cooldown_s))
    if health.breaker_failures is not None:
        at_least_one.append(("breaker_failures", health.breaker_failures))
    problems += [f"{where}.{name}: must be more than 0 seconds" for name, value in positive if not value > 0]
    problems += [f"{where}.{name}: must be at least 1" for name, value in at_least_one if value < 1]
    if health.retries is not None and not 0 <= health.retries <= MAX_RETRIES:
        problems.append(f"{where}.retries: must be between 0 and {MAX_RETRIES}")
    return problems


def cache_problems(cache: ResponseCache) -> list[str]:
    problems = []
    for name, value in (("ttl_s", cache.ttl_s), ("default_ttl_s", cache.default_ttl_s)):
        if value is None:
            continue
        if value <= 0:
            problems.append(
                f"cache.{name}: {value} caches nothing: give at least 1 second (leave cache out to switch it off)"
            )
        elif value > MAX_CACHE_TTL_S:
            problems.append(f"cache.{name}: at most {MAX_CACHE_TTL_S} seconds (a day)")
    if cache.default_ttl_s is not None and 0 < cache.ttl_s < cache.default_ttl_s:
        problems.append(f"cache.default_ttl_s: above the ceiling ttl_s ({cache.ttl_s})")
    return problems


def websocket_problems(ws: WebSocket) -> list[str]:
    problems = []
    for name, value, ceiling in (
        ("idle_timeout_s", ws.idle_timeout_s, MAX_WEBSOCKET_LIFETIME_S),
        ("max_lifetime_s", ws.max_lifetime_s, MAX_WEBSOCKET_LIFETIME_S),
        ("max_message_bytes", ws.max_message_bytes, MAX_WEBSOCKET_MESSAGE_BYTES),
    ):
        if not 1 <= value <= ceiling:
            problems.append(f"websocket.{name}: {value} is outside 1 to {ceiling}")
    return problems
