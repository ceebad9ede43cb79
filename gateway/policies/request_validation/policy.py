"""Requests checked against the version's OpenAPI document: ``off``, ``report`` or ``enforce``.

Whether is the route's ``policies.request_validation``; against what is the document the
portal publishes at ``contract.openapi_key(version_id)``, named by its SHA-256 in the
route (``openapi_sha256``). Each worker fetches a document once and compiles it once
(gateway/policies/request_validation/openapi.py), cached by that hash, so a request pays
for matching and validating, never for compiling.

Runs after authentication and the IP rules and before the rate limit, so a request
refused for its path, method, parameters or body media type is never counted; its
decision is ``bad_request``, never billed. A JSON body with a schema is the exception:
the body is only invited (100 Continue) and read once the caller is admitted, so the
policy leaves ``ctx.body_check`` and the proxy reads the body whole (within the
version's limit, under the body-rate watchdog), calls it, and sends the same bytes on.
Such a request, refused, counted against the rate limit like a 413 found mid-body,
and like it is not billed. Every other body goes as the proxy sends any body (streamed,
unless small with a known length: gateway/proxy.py).

``enforce`` answers 400 ``request-invalid`` with ``errors``: one ``{"location",
"message"}`` per violation (``path``, ``method``, ``path.<name>``, ``query.<name>``,
``header.<name>``, ``body``, ``body.address.city``). ``report`` logs the same list and
counts it (``tollway_gateway_request_validation_failures_total``), then forwards.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from aiohttp.web import BaseRequest
from redis.exceptions import RedisError

from gateway import contract, metrics
from gateway.exceptions import Reject
from gateway.pipeline import Policy, PolicyDeps
from gateway.policies.request_validation.openapi import (
    Body,
    CompiledDocument,
    DocumentUnusable,
    Violation,
    body_violations,
    check_parameters,
    document_from_bytes,
    is_json,
    json_body_valid,
    json_body_violations,
    json_validator,
    media_matches,
    parse_query,
)
from gateway.policies.request_validation.schema import RequestValidationSettings
from gateway.redis_mux import RedisHandle
from gateway.types import RequestContext

log = logging.getLogger("gateway.request_validation")

RETRY_FETCH_S = 1.0  # a document that could not be fetched is asked for again at most this often
MAX_DOCUMENTS = 256
MAX_MEDIA_TYPES = 256


class RequestValidationPolicy(Policy):
    NAME = "request_validation"
    PRIORITY = 1000  # after key_auth/oauth2/subscription and ip_rules (1050), before rate_limit (900)

    def __init__(self, redis: RedisHandle) -> None:
        self.redis = redis
        self.documents: dict[str, CompiledDocument] = {}  # SHA-256 -> compiled
        self.unusable: dict[str, float] = {}  # SHA-256 -> when to try again
        self.media_types: dict[str, str] = {}  # Content-Type header -> its media type

    @classmethod
    def create(cls, settings: RequestValidationSettings, deps: PolicyDeps) -> RequestValidationPolicy:
        return cls(deps.redis)

    async def document(self, route: contract.RouteRecord) -> CompiledDocument | None:
        digest = route.openapi_sha256
        if digest is None:
            return None
        found = self.documents.get(digest)
        if found is not None:
            return found
        now = time.monotonic()
        if self.unusable.get(digest, 0.0) > now:
            return None
        try:
            raw = await self.redis.get(contract.openapi_key(route.version_id))
            if raw is None or hashlib.sha256(raw).hexdigest() != digest:
                raise DocumentUnusable("not published yet, or already replaced")
            compiled = document_from_bytes(raw)
        except (RedisError, OSError, TimeoutError, DocumentUnusable) as exc:
            log.warning("OpenAPI document of %s/%s unavailable: %s", route.api_slug, route.version, exc)
            self.unusable[digest] = now + RETRY_FETCH_S
            return None
        if len(self.documents) >= MAX_DOCUMENTS:  # documents come and go; never grow without bound
            self.documents.clear()
        self.documents[digest] = compiled
        self.unusable.pop(digest, None)
        return compiled

    async def access(self, ctx: RequestContext) -> None:
        route = ctx.route
        if route is None:
            return
        mode = route.policies.request_validation
        if mode == "off":
            return  # the usual case: two attribute reads
        # The compiled document is a dict hit after the first request; only a miss awaits.
        document = self.documents.get(route.openapi_sha256 or "") or await self.document(route)
        if document is None:
            metrics.REQUEST_VALIDATION.labels(mode, "unavailable").inc()
            if mode == "enforce" and route.redis_failure_mode == "fail_closed":
                raise Reject(
                    503, "validation-unavailable", "Request validation unavailable", decision="redis_unavailable",
                    detail="The gateway could not load this version's OpenAPI document; try again shortly.",
                    headers={"Retry-After": "1"},
                )
            return
        self.check(ctx, route, document)

    def act(self, ctx: RequestContext, route: contract.RouteRecord, violations: list[Violation]) -> None:
        mode = route.policies.request_validation
        for violation in violations:
            metrics.REQUEST_VALIDATION.labels(mode, violation["location"].split(".", 1)[0]).inc()
        if mode == "report":
            log.info(
                "request_validation report %s/%s %s %s request_id=%s: %s", route.api_slug, route.version,
                ctx.request.method, ctx.upstream_path, ctx.request_id, violations,
            )
            return
        raise Reject(
            400, "request-invalid", "Request does not match the API's description", decision="bad_request",
            detail=f"{len(violations)} problem(s); see errors.", extra={"errors": violations},
        )

    def media_type(self, request: BaseRequest) -> str:
        """``request.content_type`` in lower case (aiohttp's parse: ``application/octet-stream``
        when absent or malformed), remembered per distinct header value: a service sees a
        handful, and the parse (email's header parser) cost more than the schema check of
        a small body."""
        raw = request.headers.get("Content-Type")
        if raw is None:
            return "application/octet-stream"
        media = self.media_types.get(raw)
        if media is None:
            if len(self.media_types) >= MAX_MEDIA_TYPES:  # clients choose these: never grow without bound
                self.media_types.clear()
            media = self.media_types[raw] = request.content_type.lower()
        return media

    def check(self, ctx: RequestContext, route: contract.RouteRecord, document: CompiledDocument) -> None:
        """Acts on what is wrong without reading the body; for a JSON body with a schema,
        leaves ``ctx.body_check``: the proxy reads the body (within the body limit, after
        any 100 Continue, under the body-rate watchdog) and calls it before sending the
        body on; its answer names every violation, the ones found here included. A valid
        request allocates next to nothing here (each allocation brings the next garbage
        collection closer: docs/performance.md)."""
        request = ctx.request
        found = document.find(ctx.upstream_path)
        if found is None:
            self.act(ctx, route, [{"location": "path", "message": f"{ctx.upstream_path} is not a path of this API."}])
            return
        operations, path_params = found
        operation = operations.get(request.method)
        if operation is None:
            allowed = ", ".join(sorted(operations))
            message = f"{request.method} is not an operation of this path ({allowed})."
            self.act(ctx, route, [{"location": "method", "message": message}])
            return
        violations: list[Violation] | None = None
        if operation.parameters:
            # Parsed only when a parameter lives there (each is a few µs per request).
            query = parse_query(ctx.query) if operation.query and ctx.query else NO_QUERY
            if operation.path:
                path_params = {name: unquote(value) for name, value in path_params.items()}
            violations = check_parameters(operation, path_params, query, request.headers)
        body = operation.body
        if body is not None:
            media = self.media_type(request) if request.body_exists else ""
            if not media or (body.media and not media_matches(media, body.media)):
                problems = body_violations(body, media, None)  # missing, or not a declared media type
                if problems:
                    violations = (violations or []) + problems
            elif is_json(media):
                validator = json_validator(body, media)
                if validator is not None:
                    ctx.body_check = BodyCheck(self, violations, body, validator)
                    return
        if violations:
            self.act(ctx, route, violations)


NO_QUERY: Mapping[str, list[str]] = MappingProxyType({})


class BodyCheck:
    """``ctx.body_check`` for a JSON body with a schema: what was found before the body
    (parameters, or None), and the compiled validator the body goes through once read.

    It is handed the context when called and never keeps it: a check held by the context
    that held the context back (as a closure over ``ctx`` did) made every validated
    request a reference cycle, freed only by the garbage collector, with its request,
    headers and body, instead of when the request ends: most of what enforce used to cost
    (docs/performance.md)."""

    __slots__ = ("body", "found", "policy", "validator")

    def __init__(
        self, policy: RequestValidationPolicy, found: list[Violation] | None, body: Body, validator: Any
    ) -> None:
        self.policy = policy
        self.found = found
        self.body = body
        self.validator = validator

    def __call__(self, ctx: RequestContext, raw: bytes) -> None:
        if raw and self.found is None and json_body_valid(self.validator, raw):
            return  # the usual case
        found = (self.found or []) + json_body_violations(self.body, self.validator, raw)
        if found:
            route = ctx.route
            assert route is not None
            self.policy.act(ctx, route, found)
