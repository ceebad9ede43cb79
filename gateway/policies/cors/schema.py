"""Settings of the cors policy: none at the gateway. Each API version carries its own
CORS policy in its route (contract.RouteRecord.cors: allowed origins, methods, headers,
exposed headers, max-age, credentials), configured in the portal, which always adds its
own origin so that the API reference's try-it works. Every worker holds the routes in
memory, so Redis being down changes nothing here: preflights are still answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class CorsSettings(PolicySettings):
    pass
