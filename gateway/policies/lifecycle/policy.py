"""Version lifecycle: drafts are invisible (404), retired versions are Gone (410),
deprecated ones say so on every response: Deprecation (RFC 9745), Sunset
(RFC 8594) and a Link to the successor version."""

from __future__ import annotations

import time

from gateway.exceptions import Reject
from gateway.pipeline import Policy
from gateway.timeutil import epoch, http_date
from gateway.types import RequestContext


class LifecyclePolicy(Policy):
    NAME = "lifecycle"
    PRIORITY = 2000

    async def access(self, ctx: RequestContext) -> None:
        route = ctx.route
        if route is None:
            return
        if route.state == "draft":
            raise Reject(
                404,
                "version-not-published",
                "API version not published",
                decision="not_found",
                detail=f"{route.api_slug} {route.version} is not published yet.",
            )
        if route.state == "retired":
            successor = f" Use {route.successor_version}." if route.successor_version else ""
            raise Reject(
                410,
                "version-retired",
                "API version retired",
                decision="gone",
                detail=f"{route.api_slug} {route.version} has been retired.{successor}",
            )

    def response(self, ctx: RequestContext) -> None:
        route = ctx.route
        if route is None or (route.state != "deprecated" and not route.deprecated_at):
            return
        headers = ctx.response_headers
        since = epoch(route.deprecated_at) if route.deprecated_at else time.time()
        headers.append(("Deprecation", f"@{int(since)}"))
        if route.sunset_at:
            headers.append(("Sunset", http_date(route.sunset_at)))
        if route.successor_version:
            headers.append(("Link", f'</{route.api_slug}/{route.successor_version}/>; rel="successor-version"'))
