"""The one way a webhook leaves the building: an HTTP POST that cannot be aimed inside.

Rules, each with its test in tests/portal/webhooks/test_it_refuses_unsafe_targets.py:

* https only, unless ``WEBHOOK_ALLOW_HTTP`` (on in DEBUG: ``make run`` and tests);
* no credentials in the URL;
* every address the name resolves to must be public (not private, loopback, link-local,
  multicast, reserved, unspecified, shared or IPv4-mapped to one of those), unless it
  lies in ``WEBHOOK_ALLOWED_NETWORKS`` (loopback in DEBUG);
* DNS rebinding: the name is resolved once, at send time, those addresses are checked,
  and the connection goes to the checked address (the URL's host still goes in the
  ``Host`` header and, for https, the TLS SNI and certificate check), so a second,
  different answer from DNS is never used;
* no proxies from the environment (they would connect elsewhere), no redirects;
* every phase has a timeout, the whole attempt a deadline, and at most
  ``MAX_RESPONSE_BYTES`` of the response body are read.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_RESPONSE_BYTES = 64 * 1024
# What a host may look like once IDNA-encoded: a DNS name, an IPv4 address or a bracketed IPv6 one.
HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")
EXCERPT_CHARS = 1000


class TargetRefused(Exception):
    """The URL, or an address its name resolves to, is not allowed."""


class DeliveryFailed(Exception):
    """The request could not be made or completed (connection, TLS, timeout)."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    timeout: float

    @classmethod
    def from_settings(cls) -> OutboundPolicy:
        return cls(
            allow_http=settings.WEBHOOK_ALLOW_HTTP,
            allowed_networks=tuple(ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_NETWORKS),
            timeout=float(settings.WEBHOOK_TIMEOUT_SECONDS),
        )


@dataclass(frozen=True)
class Response:
    status_code: int
    excerpt: str
    latency_ms: int


def system_resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryFailed(f"Cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


def address_allowed(address: IPAddress, policy: OutboundPolicy) -> bool:
    if any(address in network for network in policy.allowed_networks):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_allowed(address.ipv4_mapped, policy)
    # is_global is False for private, loopback, link-local, shared (100.64/10), reserved,
    # unspecified and documentation ranges; multicast can be "global", so refuse it too.
    return address.is_global and not address.is_multicast


def url_check(url: str, policy: OutboundPolicy) -> httpx.URL:
    """What can be judged without DNS: scheme, credentials, host, and a literal address."""
    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 (decoding the host raises for a malformed IDNA label)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # ValueError: IDNA errors, among others
        raise TargetRefused(f"Not a valid URL: {exc}") from exc
    if parsed.scheme == "http" and not policy.allow_http:
        raise TargetRefused("The URL must use https.")
    if parsed.scheme not in {"http", "https"}:
        raise TargetRefused("The URL must use https.")
    if not parsed.host:
        raise TargetRefused("The URL has no host.")
    if parsed.userinfo:
        raise TargetRefused("The URL must not contain credentials.")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise TargetRefused("The URL's port must be from 1 to 65535.")
    if not HOST_NAME.fullmatch(parsed.raw_host.decode("ascii", errors="replace")):
        raise TargetRefused("The URL's host is not a valid name or address.")
    try:
        literal = ipaddress.ip_address(parsed.host)
    except ValueError:
        literal = None
    if literal is not None and not address_allowed(literal, policy):
        raise TargetRefused(f"The address {literal} is not a public address.")
    is_localhost = literal is None and (parsed.host == "localhost" or parsed.host.endswith(".localhost"))
    if is_localhost and not address_allowed(ipaddress.ip_address("127.0.0.1"), policy):
        raise TargetRefused("localhost is not a public address.")
    return parsed


def resolve_checked(parsed: httpx.URL, policy: OutboundPolicy, resolve: Resolver) -> IPAddress:
    """Resolve once and check every answer; the first is where the connection goes."""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    answers = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(parsed.host, port)]
    if not answers:
        raise DeliveryFailed(f"{parsed.host} resolves to no address.")
    for address in answers:
        if not address_allowed(address, policy):
            raise TargetRefused(f"{parsed.host} resolves to {address}, which is not a public address.")
    return answers[0]


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    policy: OutboundPolicy | None = None,
    resolve: Resolver = system_resolve,
    transport: httpx.BaseTransport | None = None,
) -> Response:
    policy = policy or OutboundPolicy.from_settings()
    parsed = url_check(url, policy)
    address = resolve_checked(parsed, policy, resolve)
    pinned = parsed.copy_with(host=str(address))
    request_headers = {**headers, "Host": parsed.netloc.decode("ascii"), "Content-Type": "application/json"}
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    started = time.monotonic()
    deadline = started + policy.timeout
    try:
        with httpx.Client(
            timeout=httpx.Timeout(policy.timeout),
            follow_redirects=False,
            trust_env=False,
            transport=transport or httpx.HTTPTransport(retries=0),
        ) as client:
            request = client.build_request(
                "POST", pinned, content=body, headers=request_headers, extensions=extensions
            )
            response = client.send(request, stream=True)
            try:
                received = bytearray()
                for chunk in response.iter_raw():
                    received += chunk
                    if len(received) >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                        break
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    excerpt = bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return Response(status_code=response.status_code, excerpt=excerpt, latency_ms=latency_ms)
