"""Settings of the request_validation policy: none. Whether to validate is per version
(``policies.request_validation`` in the route, gateway/route_policies.py) and what against
is the version's OpenAPI document, published at ``contract.openapi_key(version_id)``.

Each worker fetches a document from Redis once (then compiles and keeps it, by hash), so
Redis being down changes nothing for a document already loaded. One not yet loaded is
tried again at most once a second meanwhile; until then ``enforce`` answers 503
(``validation-unavailable``), unless the version's redis_failure_mode is ``fail_open``,
and ``report`` forwards."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class RequestValidationSettings(PolicySettings):
    pass
