"""A version's request_transform and response_transform: headers added, set, removed and
renamed, query parameters added, removed and renamed, the path prefix stripped or
replaced, values filled with the caller's context; what the gateway owns (its forwarding
and X-Tollway-* headers, the request id, the rate-limit headers) stays as it was. The echo
upstream answers with what it received. A version without transforms is left alone."""

from __future__ import annotations

import httpx

from gateway.route_policies import PathPrefix, RequestTransform, ResponseTransform, VersionPolicies
from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant


def received(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    body["header_map"] = {k.lower(): v for k, v in body["headers"]}
    body["header_names"] = [k.lower() for k, _ in body["headers"]]
    return body


REQUEST = RequestTransform(
    add_headers={"X-Caller": "app-$(application_id) plan $(plan)", "X-Kept": "not used"},
    set_headers={"X-Mode": "gateway", "X-Org": "$(organization_id)", "X-Nobody": "$(client_id)"},
    remove_headers=("X-Debug",),
    rename_headers={"X-Old-Name": "X-New-Name"},
    add_query={"source": "tollway $(subscription_id)", "page": "1"},
    remove_query=("debug",),
    rename_query={"q": "query"},
    path_prefix=PathPrefix(match="/public", replace="/internal/v2"),
)


def test_it_rewrites_the_request_the_upstream_receives(start_gateway, publish, world, upstream):
    publish.route(upstream.url, policies=VersionPolicies(request_transform=REQUEST))
    publish.application(ALICE_APP, {ECHO_API_ID: grant(4401, plan_slug="gold", rate_per_minute=100)})
    gateway = start_gateway()

    r = httpx.get(
        f"{gateway.url}/echo/v1/public/items?q=shoes&debug=1&page=3&other=x",
        headers={
            "X-API-Key": world.alice_key, "X-Kept": "from client", "X-Mode": "client", "X-Debug": "secret",
            "X-Old-Name": "renamed value", "X-Request-ID": "req-123",
        },
    )
    got = received(r)
    h = got["header_map"]

    assert got["path"] == "/internal/v2/items"
    # (the echo reports the query decoded)
    assert got["query"] == "query=shoes&page=3&other=x&source=tollway 4401"  # page was there: not added
    assert h["x-caller"] == f"app-{ALICE_APP} plan gold"
    assert h["x-kept"] == "from client"  # add_headers never overrides
    assert h["x-mode"] == "gateway"  # set_headers does
    assert h["x-org"] == str(ALICE_APP * 10)
    assert "x-nobody" not in h  # $(client_id) is empty for a key: no empty header
    assert "x-debug" not in h
    assert "x-old-name" not in h
    assert h["x-new-name"] == "renamed value"
    # What must not change: the gateway's own headers, and the credential stays stripped.
    assert h["x-request-id"] == "req-123"
    assert h["x-tollway-application"] == str(ALICE_APP)
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert "x-api-key" not in h
    assert "RateLimit" in r.headers


def test_a_path_outside_the_prefix_and_a_version_without_transforms_are_left_alone(
    start_gateway, publish, world, upstream
):
    publish.route(upstream.url, policies=VersionPolicies(request_transform=REQUEST))
    publish.route(upstream.url, version="v2")
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key, "X-Debug": "kept", "X-Old-Name": "kept"}

    outside = received(httpx.get(f"{gateway.url}/echo/v1/publicity?q=1", headers=headers))
    untouched = received(httpx.get(f"{gateway.url}/echo/v2/public/items?q=1&debug=1", headers=headers))

    assert outside["path"] == "/publicity"  # whole segments only
    assert untouched["path"] == "/public/items"
    assert untouched["query"] == "q=1&debug=1"
    assert untouched["header_map"]["x-debug"] == "kept"
    assert "x-caller" not in untouched["header_map"]
    assert "x-new-name" not in untouched["header_map"]


def test_a_stripped_prefix_leaves_the_rest_of_the_path(start_gateway, publish, world, upstream):
    strip = RequestTransform(path_prefix=PathPrefix(match="/public"))
    publish.route(upstream.url, policies=VersionPolicies(request_transform=strip))
    gateway = start_gateway()
    key = {"X-API-Key": world.alice_key}

    assert received(httpx.get(f"{gateway.url}/echo/v1/public/a/b", headers=key))["path"] == "/a/b"
    assert received(httpx.get(f"{gateway.url}/echo/v1/public", headers=key))["path"] == "/"


def test_it_rewrites_the_upstream_response_but_not_the_gateway_headers(start_gateway, publish, world, upstream):
    response = ResponseTransform(
        set_headers={"X-Frame-Options": "DENY"},
        add_headers={"X-Served-For": "$(application_id)"},
        rename_headers={"Server": "X-Upstream-Server"},
        remove_headers=("Date",),
    )
    publish.route(upstream.url, policies=VersionPolicies(response_transform=response))
    publish.application(ALICE_APP, {ECHO_API_ID: grant(4402, rate_per_minute=100)})
    gateway = start_gateway()

    r = httpx.get(f"{gateway.url}/echo/v1/anything", headers={"X-API-Key": world.alice_key, "X-Request-ID": "r-9"})

    assert r.status_code == 200
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Served-For"] == str(ALICE_APP)
    assert r.headers["X-Upstream-Server"].startswith("Python/")  # the echo's aiohttp
    assert r.headers["Server"] == "Tollway"  # ours, as on every answer
    assert r.headers["X-Request-ID"] == "r-9"
    assert r.headers["RateLimit-Policy"]
    assert r.json()["path"] == "/anything"  # the body is the upstream's, untouched
    # A refusal is the gateway's own answer: no response transform on it.
    refused = httpx.get(f"{gateway.url}/echo/v1/anything", headers={"X-API-Key": world.charlie_key})
    assert refused.status_code == 401
    assert "X-Frame-Options" not in refused.headers


def test_the_schema_refuses_every_header_the_proxy_strips():
    from gateway import proxy, route_policies

    assert proxy.HOP_BY_HOP | {"expect"} <= route_policies.HOP_BY_HOP
    assert proxy.FORWARDING <= route_policies.GATEWAY_REQUEST_HEADERS
