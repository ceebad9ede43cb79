"""The edge rules: what a request target, method and credential set must look like before
the gateway routes a request. Pure functions, no I/O; ``app.admit`` applies them.

Each rule has a fast path for the common request (no ``%``, no ``.`` segment, one
credential header), decided with ``in`` and without splitting the path.

* Target forms (RFC 9112 §3.2). Origin-form (``/echo/v1/x``) is routed. Absolute-form
  (``http://host:port/echo/v1/x``) is accepted only when its authority names this
  gateway: the request's own ``Host`` header, or one of ``GATEWAY_PUBLIC_HOSTS``.
  Anything else is a 400: the gateway is not a forward proxy.
* Paths (RFC 3986 §5.2.4). ``/{api}/{version}`` must be literal: a dot segment, or an
  encoded slash or dot (``%2F``, ``%2E``, any case) there gets 400. In the rest of the
  path, ``.`` and ``..`` segments are resolved; a ``..`` that would remove ``{version}``
  gets 400, even if a later segment names the same version again. Encoded slashes and
  dots in the rest are not decoded: they reach the upstream verbatim, as nginx and Envoy
  forward them by default.
* Methods. ``allowed_methods(route)`` is the list a version accepts (``RouteRecord.allowed_methods``,
  set per version in the portal); CONNECT and TRACE are never allowed, so they never reach an upstream.
* Credentials. One request carries at most one credential: a repeated credential header,
  a repeated ``Authorization``, a key together with a bearer token, or a query key
  together with either, is ambiguous.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from gateway.contract import DEFAULT_ALLOWED_METHODS, NEVER_ALLOWED_METHODS
from gateway.exceptions import Reject

if TYPE_CHECKING:
    from aiohttp.web_request import BaseRequest
    from multidict import CIMultiDictProxy, MultiMapping

    from gateway.contract import RouteRecord
    from gateway.pipeline import Credentials

DEFAULT_PORTS = {"http": "80", "https": "443"}


def allowed_methods(route: RouteRecord | None) -> tuple[str, ...]:
    """The methods ``route`` accepts: the version's own list (published by the portal,
    which never lets TRACE or CONNECT in), or the contract's default before routing."""
    return route.allowed_methods if route is not None else DEFAULT_ALLOWED_METHODS


def method_allowed(method: str, methods: tuple[str, ...]) -> bool:
    # NEVER_ALLOWED_METHODS again here: a hand-written record in Redis must not open them.
    return method in methods and method not in NEVER_ALLOWED_METHODS


def is_cors_preflight(request: BaseRequest) -> bool:
    """A browser's CORS preflight (OPTIONS with Origin and Access-Control-Request-Method):
    the cors policy answers it, whatever the version's method list says."""
    if request.method != "OPTIONS":
        return False
    headers = request.headers
    return "Origin" in headers and "Access-Control-Request-Method" in headers


def method_not_allowed(methods: tuple[str, ...]) -> Reject:
    methods = tuple(m for m in methods if m not in NEVER_ALLOWED_METHODS)
    return Reject(
        405,
        "method-not-allowed",
        "Method not allowed",
        decision="bad_request",
        detail=f"This API version accepts {', '.join(methods)}.",
        headers={"Allow": ", ".join(methods)},
    )


def bad_target(detail: str) -> Reject:
    return Reject(400, "bad-request", "Bad request target", decision="bad_request", detail=detail, close=True)


# --- target forms ---------------------------------------------------------------------------


def normalise_authority(authority: str, scheme: str = "http") -> str:
    """``Host:8080`` -> ``host:8080``; the scheme's default port made explicit."""
    authority = authority.strip().lower()
    if authority.startswith("["):  # [v6]:port
        host, _, rest = authority.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        host += "]"
    else:
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    return f"{host}:{port or DEFAULT_PORTS.get(scheme, '80')}"


def public_hosts(entries: Iterable[str]) -> frozenset[str]:
    return frozenset(normalise_authority(entry) for entry in entries)


def origin_target(target: str, host_header: str | None, own_hosts: Collection[str]) -> tuple[str, str]:
    """The origin-form (path and query) of an absolute-form ``target``, and its authority.

    Raises a 400 Reject unless the target is http(s) and names this gateway: its authority
    equals the request's Host header, or one of ``own_hosts`` (normalised authorities)."""
    scheme, sep, rest = target.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise bad_target("The request target must be a path, or an http(s) URL naming this gateway.")
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1 and found < end:
            end = found
    authority, path = rest[:end], rest[end:]
    if not authority or "@" in authority:
        raise bad_target("The request target's authority is missing or carries user information.")
    named = normalise_authority(authority, scheme)
    if named not in own_hosts and (host_header is None or normalise_authority(host_header, scheme) != named):
        raise bad_target("The request target names another host; this gateway is not a forward proxy.")
    if not path.startswith("/"):
        path = "/" + path
    return path, authority


# --- paths ----------------------------------------------------------------------------------


def split_path(path: str) -> tuple[str, str, str]:
    """``/{api}/{version}/rest`` -> (api, version, upstream path), the upstream path with its
    dot segments resolved. Raises a 400 Reject for a prefix that is not literal or a path
    that climbs above it."""
    parts = path.split("/", 3)
    api_slug = parts[1] if len(parts) > 1 else ""
    version = parts[2] if len(parts) > 2 else ""
    if "%" in api_slug or "%" in version:
        prefix = (api_slug + "/" + version).lower()
        if "%2f" in prefix or "%2e" in prefix:
            raise bad_target("An encoded slash or dot is not allowed in the API or version segment.")
    if api_slug in (".", "..") or version in (".", ".."):
        raise bad_target("A dot segment is not allowed in the API or version segment.")
    if len(parts) < 4:
        return api_slug, version, "/"
    rest = parts[3]
    if "." not in rest:  # the usual case: nothing to resolve
        return api_slug, version, "/" + rest
    return api_slug, version, resolve_dot_segments(rest)


def resolve_dot_segments(rest: str) -> str:
    """RFC 3986 §5.2.4 over the path below ``/{api}/{version}``; ``/``-rooted result.
    A ``..`` with nothing left to remove would climb into the version prefix: 400."""
    segments = rest.split("/")
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if not out:
                raise bad_target("The path climbs above its API version.")
            out.pop()
        elif segment != ".":
            out.append(segment)
    resolved = "/" + "/".join(out)
    # "/a/b/.." is "/a/": a trailing dot segment leaves its directory's slash behind.
    if out and segments[-1] in (".", ".."):
        resolved += "/"
    return resolved


# --- credentials ----------------------------------------------------------------------------


def count_credentials(
    headers: CIMultiDictProxy[str],
    credentials: Credentials,
    query: MultiMapping[str] | None,
) -> int:
    """How many credentials the request presents, counting every credential header, every
    ``Authorization`` header (a repeated one is ambiguous whatever its scheme) and, when
    ``query`` is given (the version honours query keys), every credential query parameter."""
    count = 0
    for name in credentials.headers:
        if name in headers:
            count += len(headers.getall(name))
    if "Authorization" in headers:
        authorizations = headers.getall("Authorization")
        if len(authorizations) > 1:
            count += len(authorizations)
        elif credentials.bearer and authorizations[0][:7].lower() == "bearer ":
            count += 1
    if query is not None:
        for param in credentials.query_params:
            if param in query:
                count += len(query.getall(param))
    return count


def ambiguous_credentials() -> Reject:
    return Reject(
        400,
        "ambiguous-credentials",
        "Ambiguous credentials",
        decision="bad_request",
        detail="Send exactly one credential: one key header, one Authorization header, or one query key.",
    )
