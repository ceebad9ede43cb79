"""Settings of the upstream_headers policy (environment: GATEWAY_UPSTREAM_HEADERS).

A comma-separated list of what to tell the upstream about the caller, each as
an X-Tollway-* header: application, organization, plan, subscription, key_prefix,
client_id. Default: application, plan, subscription, key_prefix; ``none`` sends none of
them. Whatever the
client sent under X-Tollway-* is always removed first, so these cannot be forged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.pipeline import PolicySettings, setting
from tollway.env import check_choices, read_list

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


@dataclass(frozen=True)
class UpstreamHeadersSettings(PolicySettings):
    fields: tuple[str, ...] = setting(DEFAULT_UPSTREAM_HEADERS, "Which X-Tollway-* headers to add upstream.")

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: GatewayConfig) -> UpstreamHeadersSettings:
        fields = read_list("GATEWAY_UPSTREAM_HEADERS", DEFAULT_UPSTREAM_HEADERS, env)
        if fields == ["none"]:
            return cls(fields=())
        check_choices("GATEWAY_UPSTREAM_HEADERS", fields, UPSTREAM_HEADER_NAMES)
        return cls(fields=tuple(fields))
