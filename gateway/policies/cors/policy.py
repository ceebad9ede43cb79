"""CORS (the Fetch standard's cross-origin protocol), per API version.

Preflights (OPTIONS with Origin and Access-Control-Request-Method) are answered here,
before any credential is asked for: the browser sends them without the key, so they
can never pass key_auth. An allowed origin gets 204 with the version's methods,
headers and max-age; any other origin gets 403 ``cors-origin-not-allowed``, a problem
document a developer can read in the network panel (a browser fails the preflight
either way). Nothing goes upstream and nothing is counted against a quota: the
later policies never run. Metering records the preflight with decision ``preflight``,
which is not billable.

On every other response of a version with CORS, proxied or refused (401, 403, 429
and the rest come through the response phase too), an allowed origin gets
Access-Control-Allow-Origin (the request's origin, never ``*``, so the answer is the
same with or without credentials) and Access-Control-Expose-Headers, and every
response gets ``Vary: Origin`` so that a shared cache keeps the answers apart. The
gateway owns these headers: the upstream's own Access-Control-* headers are dropped.
"""

from __future__ import annotations

from gateway.edge import is_cors_preflight
from gateway.exceptions import Answer, Reject
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.cors.schema import CorsSettings
from gateway.policies.key_auth.schema import KeyAuthSettings
from gateway.types import RequestContext

OWNED_HEADERS = frozenset(
    {
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
    }
)


class CorsPolicy(Policy):
    NAME = "cors"
    # After lifecycle (2000: a draft stays invisible, a retired version says 410), before
    # every credential check (key_auth 1300, oauth2 1250).
    PRIORITY = 1900

    def __init__(self, credential_headers: tuple[str, ...]) -> None:
        self.credential_headers = credential_headers

    @classmethod
    def create(cls, settings: CorsSettings, deps: PolicyDeps) -> CorsPolicy:
        # The key header is the gateway's setting, not the portal's: a browser must be
        # allowed to send whichever one this gateway reads.
        key_auth = deps.config.policy_settings.get("key_auth")
        header = key_auth.header if isinstance(key_auth, KeyAuthSettings) else "X-API-Key"
        return cls((header, "Authorization"))

    async def access(self, ctx: RequestContext) -> None:
        route = ctx.route
        request = ctx.request
        if route is None or not route.cors.allowed_origins or not is_cors_preflight(request):
            return  # a plain OPTIONS request goes to the upstream like any other
        origin = request.headers["Origin"]
        cors = route.cors
        if not cors.allows_origin(origin):
            raise Reject(
                403,
                "cors-origin-not-allowed",
                "Origin not allowed",
                decision="preflight",
                detail=f"{route.api_slug} {route.version} does not accept cross-origin calls from {origin}.",
            )
        allowed_headers = list(dict.fromkeys((*cors.allowed_headers, *self.credential_headers)))
        methods = [m for m in cors.allowed_methods if m in route.allowed_methods]
        answer = {
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": ", ".join(allowed_headers),
            "Access-Control-Max-Age": str(cors.max_age_s),
        }
        raise Answer(204, decision="preflight", headers=answer)

    def response(self, ctx: RequestContext) -> None:
        route = ctx.route
        if route is None or not route.cors.allowed_origins:
            return
        cors = route.cors
        ctx.owned_response_headers = OWNED_HEADERS
        out = ctx.response_headers
        out.append(("Vary", "Origin"))
        origin = ctx.request.headers.get("Origin")
        if origin is None or not cors.allows_origin(origin):
            return
        out.append(("Access-Control-Allow-Origin", origin))
        if cors.allow_credentials:
            out.append(("Access-Control-Allow-Credentials", "true"))
        if ctx.decision != "preflight" and cors.exposed_headers:
            out.append(("Access-Control-Expose-Headers", ", ".join(cors.exposed_headers)))
