"""Every policy the gateway knows, by name: adding one is one folder plus one line here.

Each line pairs a ``Policy`` subclass (its ``NAME``, ``PRIORITY``, ``REQUIRES``, its
``create(settings, deps)`` factory and its ``credentials(settings)``) with its
``PolicySettings`` dataclass (``from_env(env, config)``). From these the registry

* checks the names in GATEWAY_POLICIES and adds what the chosen policies
  ``REQUIRES`` (key_auth and oauth2 bring in subscription), saying so at start-up;
* reads every policy's settings once, in ``load_config``, so a bad value stops the
  gateway before any worker starts;
* collects the credentials of every policy, on or off, for the proxy to strip;
* builds a worker's pipeline.

The order of the lines does not matter: the pipeline sorts by PRIORITY.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway import metrics
from gateway.config import GatewayConfig
from gateway.pipeline import Credentials, Pipeline, Policy, PolicyDeps, PolicySettings
from gateway.policies.cache.policy import CachePolicy
from gateway.policies.cache.schema import CacheSettings
from gateway.policies.cors.policy import CorsPolicy
from gateway.policies.cors.schema import CorsSettings
from gateway.policies.ip_rules.policy import IpRulesPolicy
from gateway.policies.ip_rules.schema import IpRulesSettings
from gateway.policies.key_auth.policy import KeyAuthPolicy
from gateway.policies.key_auth.schema import KeyAuthSettings
from gateway.policies.lifecycle.policy import LifecyclePolicy
from gateway.policies.lifecycle.schema import LifecycleSettings
from gateway.policies.metering.policy import MeteringPolicy
from gateway.policies.metering.schema import MeteringSettings
from gateway.policies.oauth2.policy import OAuth2Policy
from gateway.policies.oauth2.schema import OAuth2Settings
from gateway.policies.rate_limit.policy import RateLimitPolicy
from gateway.policies.rate_limit.schema import RateLimitSettings
from gateway.policies.request_validation.policy import RequestValidationPolicy
from gateway.policies.request_validation.schema import RequestValidationSettings
from gateway.policies.subscription.policy import SubscriptionPolicy
from gateway.policies.subscription.schema import SubscriptionSettings
from gateway.policies.transform.policy import TransformPolicy
from gateway.policies.transform.schema import TransformSettings
from gateway.policies.upstream_headers.policy import UpstreamHeadersPolicy
from gateway.policies.upstream_headers.schema import UpstreamHeadersSettings
from gateway.policies.websocket.policy import WebSocketPolicy
from gateway.policies.websocket.schema import WebSocketSettings

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class PolicySpec:
    policy: type[Policy]
    settings: type[PolicySettings]

    @property
    def name(self) -> str:
        return self.policy.NAME


def _by_name(*specs: PolicySpec) -> dict[str, PolicySpec]:
    registry = {spec.name: spec for spec in specs}
    assert len(registry) == len(specs), "two policies share a NAME"
    for spec in specs:
        missing = set(spec.policy.REQUIRES) - set(registry)
        assert not missing, f"{spec.name} requires unknown policies {sorted(missing)}"
    return registry


REGISTRY: dict[str, PolicySpec] = _by_name(
    PolicySpec(LifecyclePolicy, LifecycleSettings),
    PolicySpec(CorsPolicy, CorsSettings),
    PolicySpec(KeyAuthPolicy, KeyAuthSettings),
    PolicySpec(OAuth2Policy, OAuth2Settings),
    PolicySpec(SubscriptionPolicy, SubscriptionSettings),
    PolicySpec(IpRulesPolicy, IpRulesSettings),
    PolicySpec(RequestValidationPolicy, RequestValidationSettings),
    PolicySpec(RateLimitPolicy, RateLimitSettings),
    PolicySpec(UpstreamHeadersPolicy, UpstreamHeadersSettings),
    PolicySpec(TransformPolicy, TransformSettings),
    PolicySpec(CachePolicy, CacheSettings),
    PolicySpec(WebSocketPolicy, WebSocketSettings),
    PolicySpec(MeteringPolicy, MeteringSettings),
)
POLICY_NAMES: tuple[str, ...] = tuple(REGISTRY)


def resolve(configured: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The policies to run, each with the configured policies that required it (() when it
    was configured itself), in registry order. Requirements are followed transitively."""
    required_by: dict[str, list[str]] = {}
    chosen = list(dict.fromkeys(configured))
    pending = list(chosen)
    while pending:
        name = pending.pop()
        for needed in REGISTRY[name].policy.REQUIRES:
            if needed not in chosen and needed not in required_by:
                pending.append(needed)
            required_by.setdefault(needed, []).append(name)
    enabled = set(chosen) | set(required_by)
    return {
        name: () if name in chosen else tuple(sorted(required_by[name]))
        for name in POLICY_NAMES
        if name in enabled
    }


def describe_enabled(enabled: Mapping[str, tuple[str, ...]]) -> str:
    """For the start-up log: "key_auth, subscription (required by key_auth), ..."."""
    if not enabled:
        return "none"
    return ", ".join(
        f"{name} (required by {', '.join(by)})" if by else name for name, by in enabled.items()
    )


def load_settings(env: Mapping[str, str], config: GatewayConfig) -> dict[str, PolicySettings]:
    """Every registered policy's settings, on or off: all are checked at start-up, and the
    credentials of a policy that is off are still kept from the upstream."""
    return {name: spec.settings.from_env(env, config) for name, spec in REGISTRY.items()}


def credentials(config: GatewayConfig) -> Credentials:
    out = Credentials()
    for name, spec in REGISTRY.items():
        out = out | spec.policy.credentials(config.policy_settings[name])
    return out


def build_pipeline(deps: PolicyDeps) -> Pipeline:
    config = deps.config
    enabled = resolve(config.policies)
    policies = [REGISTRY[name].policy.create(config.policy_settings[name], deps) for name in enabled]
    for name, required_by in enabled.items():
        metrics.POLICY_ENABLED.labels(name, ",".join(required_by)).set(1)
    return Pipeline(policies)
