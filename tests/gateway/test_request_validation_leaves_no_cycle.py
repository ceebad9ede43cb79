"""A request that request_validation checked is freed when the request ends, by reference
counting, never left as a cycle for the garbage collector: that cycle (the body check kept
the context that kept the check) was most of what `enforce` cost under load
(docs/performance.md). In-process, with the real policy, a compiled document and a real
aiohttp request object."""

from __future__ import annotations

import asyncio
import gc

import orjson
import pytest
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway import contract
from gateway.exceptions import Reject
from gateway.policies.request_validation.openapi import document_from_bytes
from gateway.policies.request_validation.policy import RequestValidationPolicy
from gateway.route_policies import VersionPolicies
from gateway.types import RequestContext

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {"/orders": {"post": {
        "parameters": [{"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["item"], "properties": {"item": {"type": "string"}}}}}},
        "responses": {"200": {"description": "ok"}},
    }}},
}


def contexts_alive() -> int:
    # type(), not isinstance(): the heap may hold a weakref proxy whose referent is gone, and
    # isinstance() asks the proxy for its __class__, which raises ReferenceError.
    return sum(1 for o in gc.get_objects() if issubclass(type(o), RequestContext))


async def validate(policy: RequestValidationPolicy, route: contract.RouteRecord, body: bytes) -> None:
    payload = StreamReader(make_mocked_request("GET", "/").protocol, 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request("POST", "/bench/v2/orders?dry_run=false", payload=payload, headers=CIMultiDict(
        {"Content-Type": "application/json", "Content-Length": str(len(body))}))
    ctx = RequestContext(request=request, request_id="r", event_id="e", upstream_path="/orders",
                         query="dry_run=false", route=route)
    await policy.access(ctx)
    assert ctx.body_check is not None  # a JSON body with a schema: checked once read
    ctx.body_check(ctx, await request.content.read())


def validated(policy: RequestValidationPolicy, route: contract.RouteRecord, body: bytes) -> None:
    asyncio.run(validate(policy, route, body))


def test_a_validated_request_is_freed_without_the_garbage_collector():
    raw, digest = contract.openapi_payload(DOCUMENT)
    policy = RequestValidationPolicy(redis=None)  # type: ignore[arg-type]  # the document is already compiled
    policy.documents[digest] = document_from_bytes(raw)
    route = contract.RouteRecord(
        api_id=1, api_slug="bench", version="v2", version_id=2, state="published",
        upstreams=(contract.Upstream(url="http://127.0.0.1:9"),),
        policies=VersionPolicies(request_validation="enforce"), openapi_sha256=digest,
    )
    gc.collect()
    gc.disable()
    try:
        before = contexts_alive()
        validated(policy, route, orjson.dumps({"item": "lamp"}))
        assert contexts_alive() == before, "the validated request outlived itself: a reference cycle"
        with pytest.raises(Reject) as refused:  # enforce: 400 naming body.item
            validated(policy, route, orjson.dumps({"quantity": 2}))
        assert refused.value.status == 400
        assert [e["location"] for e in refused.value.extra["errors"]] == ["body.item"]
    finally:
        gc.enable()
