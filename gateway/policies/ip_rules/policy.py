"""Allow and deny lists of client addresses, per version, with the application's as an override.

The client address is the connection's peer, unless the peer is a trusted proxy
(GATEWAY_TRUSTED_PROXIES): then X-Forwarded-For is read from the right, skipping
trusted proxies, and the first address that is not one is the client (a client can
prepend anything to the header, so only what trusted hops appended counts). Deny wins;
with an allow list, only addresses in it pass. A refusal is 403 ``ip-not-allowed``.
Runs after authentication (the application's override needs the application) and
before the rate limit, so a refused request is never counted.
"""

from __future__ import annotations

import ipaddress

from gateway.exceptions import Reject
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.ip_rules.schema import IpRulesSettings
from gateway.route_policies import IpRules
from gateway.types import RequestContext

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class CompiledRules:
    __slots__ = ("allow", "deny")

    def __init__(self, rules: IpRules) -> None:
        self.allow = tuple(ipaddress.ip_network(item, strict=False) for item in rules.allow)
        self.deny = tuple(ipaddress.ip_network(item, strict=False) for item in rules.deny)

    def admits(self, address: Address | None) -> bool:
        if address is None:
            return not self.allow  # no address (a Unix socket): only a deny-only rule lets it through
        if any(address in network for network in self.deny):
            return False
        return not self.allow or any(address in network for network in self.allow)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class IpRulesPolicy(Policy):
    NAME = "ip_rules"
    PRIORITY = 1050  # after key_auth/oauth2/subscription, before rate_limit (900)

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self.trusted = trusted
        self.by_rules: dict[IpRules, CompiledRules] = {}

    @classmethod
    def create(cls, settings: IpRulesSettings, deps: PolicyDeps) -> IpRulesPolicy:
        return cls(deps.config.trusted_proxies)

    def compiled(self, rules: IpRules) -> CompiledRules:
        found = self.by_rules.get(rules)
        if found is None:
            if len(self.by_rules) > 10_000:  # records come and go; never grow without bound
                self.by_rules.clear()
            found = self.by_rules[rules] = CompiledRules(rules)
        return found

    def trusted_peer(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def client_address(self, ctx: RequestContext) -> Address | None:
        request = ctx.request
        transport = request.transport
        peername = transport.get_extra_info("peername") if transport is not None else None
        address = _address(peername[0]) if peername else None
        if not self.trusted_peer(address):
            return address
        forwarded = request.headers.getall("X-Forwarded-For", [])
        hops = [hop for value in forwarded for hop in value.split(",")]
        for hop in reversed(hops):
            hop_address = _address(hop)
            if hop_address is None:
                return address  # garbage from a hop we cannot trust: judge the peer
            if not self.trusted_peer(hop_address):
                return hop_address
            address = hop_address
        return address

    async def access(self, ctx: RequestContext) -> None:
        route, app = ctx.route, ctx.application
        rules: IpRules | None = app.ip_rules if app is not None and app.ip_rules is not None else None
        if rules is None:
            rules = route.policies.ip_rules if route is not None else None
            if rules is None:
                return  # the usual case
        if not (rules.allow or rules.deny):
            return
        if not self.compiled(rules).admits(self.client_address(ctx)):
            raise Reject(
                403, "ip-not-allowed", "Address not allowed", decision="forbidden",
                detail="This API version does not accept calls from your address.",
            )

