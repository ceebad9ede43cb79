"""Hygiene: the echo upstream sees no hop-by-hop header, no credential, no forged
X-Forwarded-For or X-Tollway-*; it does see the forwarding headers we set, the request
id and traceparent, and who the caller is."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import ALICE_APP, ECHO_API_ID, grant


def seen_headers(response: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


FORGED = {
    "Connection": "keep-alive, X-Secret-Hop",
    "X-Secret-Hop": "must not pass",
    "Keep-Alive": "timeout=5",
    "TE": "trailers",
    "Trailer": "X-Checksum",
    "Upgrade": "h2c-nope",
    "Proxy-Authorization": "Basic Zm9vOmJhcg==",
    "Proxy-Connection": "keep-alive",
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "Forwarded": "for=6.6.6.6",
    "X-Tollway-Application": "999",
    "X-Tollway-Plan": "enterprise",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "X-Request-ID": "req-abc-123",
    "X-Custom": "kept",
}


def test_echo_sees_no_hop_by_hop_no_credential_no_forgery(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/x?a=1", headers={**FORGED, "X-API-Key": world.alice_key})
    assert r.status_code == 200, r.text
    seen = seen_headers(r)
    for hop in ("x-secret-hop", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
                "proxy-connection", "forwarded", "x-api-key", "authorization"):
        assert hop not in seen, hop
    assert seen.get("connection", ["keep-alive"]) == ["keep-alive"]  # the gateway's own hop to the upstream
    assert world.alice_key not in r.text
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [f"127.0.0.1:{gateway.port}"]
    assert seen["x-tollway-application"] == [str(ALICE_APP)]
    assert seen["x-tollway-plan"] == ["free"]
    assert seen["x-request-id"] == ["req-abc-123"]
    assert seen["traceparent"] == [FORGED["traceparent"]]
    assert seen["x-custom"] == ["kept"]
    assert r.headers["X-Request-ID"] == "req-abc-123"


def test_bearer_credential_is_stripped(start_gateway, world):
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"Authorization": f"Bearer {world.alice_key}"})
    assert r.status_code == 200
    assert "authorization" not in seen_headers(r)
    assert world.alice_key not in r.text


def test_query_key_is_stripped_and_other_params_kept(start_gateway, publish, world, upstream):
    publish.route(upstream.url, allow_query_key=True)
    gateway = start_gateway()
    r = httpx.get(f"{gateway.url}/echo/v1/q?x=1&api_key={world.alice_key}&y=2")
    assert r.status_code == 200, r.text
    assert r.json()["query"] == "x=1&y=2"
    assert world.alice_key not in r.text


def test_a_request_id_is_generated_when_missing_or_bogus(start_gateway, world):
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    first = httpx.get(f"{gateway.url}/echo/v1/", headers=headers)
    second = httpx.get(f"{gateway.url}/echo/v1/", headers={**headers, "X-Request-ID": "bad id\twith spaces"})
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert all(len(i) == 32 for i in ids)
    assert seen_headers(first)["x-request-id"] == [first.headers["X-Request-ID"]]


def test_trusted_proxy_chain_is_extended_not_replaced(start_gateway, world):
    gateway = start_gateway(GATEWAY_TRUSTED_PROXIES="127.0.0.0/8")
    r = httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key,
                                                      "X-Forwarded-For": "203.0.113.7",
                                                      "X-Forwarded-Proto": "https"})
    seen = seen_headers(r)
    assert seen["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["https"]


def test_upstream_headers_are_configurable(start_gateway, publish, world):
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8001, plan_slug="gold")})
    gateway = start_gateway(GATEWAY_UPSTREAM_HEADERS="organization,subscription")
    seen = seen_headers(httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}))
    assert seen["x-tollway-organization"] == [str(ALICE_APP * 10)]
    assert seen["x-tollway-subscription"] == ["8001"]
    assert "x-tollway-plan" not in seen
    assert "x-tollway-application" not in seen


def test_a_header_named_twice_in_the_setting_is_sent_once(start_gateway, publish, world):
    # The proxy appends the X-Tollway-* headers to what it sends, without a multidict to
    # collapse repeats: the policy names each once.
    publish.application(ALICE_APP, {ECHO_API_ID: grant(8002, plan_slug="gold")})
    gateway = start_gateway(GATEWAY_UPSTREAM_HEADERS="plan,subscription,plan")
    seen = seen_headers(httpx.get(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}))
    assert seen["x-tollway-plan"] == ["gold"]
    assert seen["x-tollway-subscription"] == ["8002"]
