"""Settings of the lifecycle policy: none. Draft and retired versions and the
deprecation dates come from the route (contract.RouteRecord), which every
worker holds in memory, so Redis being down changes nothing here."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class LifecycleSettings(PolicySettings):
    pass
