"""Settings of the ip_rules policy: none of its own. The allow and deny lists are per version
(``policies.ip_rules`` in the route) and per application (``ip_rules`` in its record, which
replaces the version's), so Redis being down changes nothing beyond what the application
lookup already does. Which peers may speak for a client in X-Forwarded-For is the
gateway-wide GATEWAY_TRUSTED_PROXIES."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class IpRulesSettings(PolicySettings):
    pass
