"""Settings of the transform policy: none. What to change is per version, in the route's
``policies.request_transform`` and ``policies.response_transform`` (gateway/route_policies.py),
which every worker holds in memory, so Redis being down changes nothing here."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class TransformSettings(PolicySettings):
    pass
