"""Rolling upgrade: a route written before allowed_methods and cors existed (or by a
newer portal, with fields this gateway does not know) still decodes and serves. The
old record gets the default methods and no CORS, which is how it behaved before."""

from __future__ import annotations

import json

import httpx

from gateway import contract
from tests.gateway.conftest import ECHO_API_ID

OLD_RECORD = {
    "api_id": ECHO_API_ID,
    "api_slug": "echo",
    "version": "v1",
    "version_id": 101,
    "state": "published",
    "upstreams": [{"url": "http://127.0.0.1:9", "weight": 1}],
    "connect_timeout_s": 2.0,
    "read_timeout_s": 30.0,
    "total_timeout_s": 60.0,
    "max_body_bytes": 1024,
    "allow_query_key": False,
    "redis_failure_mode": "fail_closed",
    "deprecated_at": None,
    "sunset_at": None,
    "successor_version": None,
}


def test_an_old_record_decodes_with_the_defaults():
    record = contract.RouteRecord.from_json(json.dumps(OLD_RECORD))
    assert record.allowed_methods == contract.DEFAULT_ALLOWED_METHODS
    assert record.cors == contract.CorsPolicy()
    assert record.cors.allowed_origins == ()
    assert record.max_body_bytes == 1024


def test_a_newer_record_with_unknown_fields_decodes():
    newer = {
        **OLD_RECORD,
        "some_future_field": 1,
        "upstreams": [{"url": "http://127.0.0.1:9", "weight": 2, "zone": "b"}],
        "allowed_methods": ["GET"],
        "cors": {"allowed_origins": ["https://a.example"], "max_age_s": 5, "future": True},
    }
    record = contract.RouteRecord.from_json(json.dumps(newer))
    assert record.allowed_methods == ("GET",)
    assert record.upstreams == (contract.Upstream(url="http://127.0.0.1:9", weight=2),)
    assert record.cors.allowed_origins == ("https://a.example",)
    assert record.cors.max_age_s == 5
    assert record.cors.exposed_headers == contract.DEFAULT_CORS_EXPOSED_HEADERS


def test_a_record_round_trips():
    record = contract.RouteRecord.from_json(json.dumps(OLD_RECORD))
    assert contract.RouteRecord.from_json(record.to_json()) == record


def test_the_gateway_serves_an_old_record(start_gateway, publish, world, upstream, redis_client):
    field = contract.route_field("echo", "v1")
    redis_client.hset(contract.ROUTES_KEY, field, json.dumps({**OLD_RECORD, "upstreams": [{"url": upstream.url}]}))
    publish._announce("route", field)
    gateway = start_gateway()

    r = httpx.patch(f"{gateway.url}/echo/v1/", headers={"X-API-Key": world.alice_key}, content=b"x")
    assert r.status_code == 200
    # No CORS policy in the record: a preflight is an API call like any other, as before.
    preflight = httpx.options(
        f"{gateway.url}/echo/v1/", headers={"Origin": "http://portal.test", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 401
    assert "Access-Control-Allow-Origin" not in preflight.headers
