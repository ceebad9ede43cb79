"""Settings of the request_validation policy: none. Whether to validate is per version
(``policies.request_validation`` in the route, gateway/route_policies.py) and what against
is the version's OpenAPI document, published at ``contract.openapi_key(version_id)``."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class RequestValidationSettings(PolicySettings):
    pass
