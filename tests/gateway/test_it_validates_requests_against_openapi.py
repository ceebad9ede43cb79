"""A version's request_validation, over real sockets with the echo upstream reporting what
it received: the demo Echo API's document (only /anything), a JSON body with a nested
required field, a required query parameter and an integer path parameter; ``enforce``
refuses with 400 and an ``errors`` array naming each location, ``report`` forwards and
counts; a valid request reaches the upstream byte for byte; ``off`` changes nothing."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
import yaml

from gateway import contract
from gateway.route_policies import VersionPolicies
from tests.gateway.conftest import ECHO_API_ID

ROOT = Path(__file__).resolve().parents[2]
ECHO_DOCUMENT = yaml.safe_load((ROOT / "portal/demo/echo-openapi.yaml").read_text())
ORDERS_DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "Orders", "version": "1"},
    "paths": {
        "/orders/{order_id}": {
            "parameters": [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "put": {
                "parameters": [
                    {"name": "dry_run", "in": "query", "required": True, "schema": {"type": "boolean"}},
                    {"name": "X-Attempt", "in": "header", "schema": {"type": "integer", "minimum": 1}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}},
                },
                "responses": {"200": {"description": "ok"}},
            },
        }
    },
    "components": {
        "schemas": {
            "Order": {
                "type": "object",
                "required": ["item", "address"],
                "properties": {
                    "item": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                    "note": {"type": "string", "nullable": True},
                    "address": {"$ref": "#/components/schemas/Address"},
                },
            },
            "Address": {
                "type": "object",
                "required": ["city"],
                "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            },
        }
    },
}
VALID_ORDER = b'{"item": "lamp", "quantity": 2, "note": null,  "address": {"city": "Berlin", "zip": "10115"}}'


def publish_validated(publish, redis_client, upstream, document, mode, version="v1"):
    version_id = ECHO_API_ID * 100 + int(version.lstrip("v"))
    raw, digest = contract.openapi_payload(document)
    redis_client.set(contract.openapi_key(version_id), raw)
    return publish.route(
        upstream.url, version=version, version_id=version_id,
        policies=VersionPolicies(request_validation=mode), openapi_sha256=digest,
    )


def failures(gateway, mode: str, location: str) -> float:
    text = httpx.get(f"{gateway.url}/_tollway/metrics").text
    pattern = (
        r'^tollway_gateway_request_validation_failures_total\{location="' + location + r'",mode="' + mode
        + r'"\} ([0-9.e+]+)$'
    )
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def errors_of(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("request-invalid")
    return {e["location"]: e["message"] for e in body["errors"]}


def test_enforce_on_the_demo_echo_document(start_gateway, publish, redis_client, world, upstream):
    publish_validated(publish, redis_client, upstream, ECHO_DOCUMENT, "enforce")
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key}
    upstream.reset()

    ok = httpx.get(f"{gateway.url}/echo/v1/anything?q=hello", headers=headers)
    posted = httpx.post(f"{gateway.url}/echo/v1/anything", headers=headers, json={"any": ["thing"]})
    assert ok.status_code == 200
    assert ok.json()["query"] == "q=hello"
    assert posted.status_code == 200, posted.text
    assert upstream.served() == 2

    other_path = errors_of(httpx.get(f"{gateway.url}/echo/v1/elsewhere", headers=headers))
    other_method = errors_of(httpx.delete(f"{gateway.url}/echo/v1/anything", headers=headers))
    not_an_object = errors_of(httpx.post(f"{gateway.url}/echo/v1/anything", headers=headers, json=[1, 2]))
    not_json = errors_of(httpx.post(
        f"{gateway.url}/echo/v1/anything", headers={**headers, "Content-Type": "application/json"}, content=b"{oops"
    ))
    form = errors_of(httpx.post(f"{gateway.url}/echo/v1/anything", headers=headers, data={"a": "b"}))

    assert set(other_path) == {"path"}
    assert "/elsewhere is not a path" in other_path["path"]
    assert set(other_method) == {"method"}
    assert "GET, HEAD, POST" in other_method["method"]
    assert set(not_an_object) == {"body"}
    assert "object" in not_an_object["body"]
    assert set(not_json) == {"body"}
    assert "Not valid JSON" in not_json["body"]
    assert set(form) == {"header.content-type"}
    assert upstream.served() == 2  # none of the refused requests reached it
    assert failures(gateway, "enforce", "path") == 1
    assert failures(gateway, "enforce", "body") == 2


def test_report_forwards_what_enforce_refuses_and_counts_it(start_gateway, publish, redis_client, world, upstream):
    publish_validated(publish, redis_client, upstream, ECHO_DOCUMENT, "report")
    gateway = start_gateway(GATEWAY_LOG_LEVEL="INFO")
    upstream.reset()

    r = httpx.get(f"{gateway.url}/echo/v1/elsewhere?x=1", headers={"X-API-Key": world.alice_key})

    assert r.status_code == 200
    assert r.json()["path"] == "/elsewhere"
    assert upstream.served() == 1
    assert failures(gateway, "report", "path") == 1
    assert "request_validation report echo/v1 GET /elsewhere" in gateway.log()


def test_parameters_and_a_nested_required_field(start_gateway, publish, redis_client, world, upstream):
    publish_validated(publish, redis_client, upstream, ORDERS_DOCUMENT, "enforce")
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key, "Content-Type": "application/json"}
    upstream.reset()

    bad = errors_of(httpx.put(
        f"{gateway.url}/echo/v1/orders/abc", headers={**headers, "X-Attempt": "0"},
        content=b'{"item": 5, "quantity": 0, "address": {"zip": "1"}}',
    ))
    assert bad.keys() == {
        "path.order_id", "query.dry_run", "header.x-attempt", "body.item", "body.quantity", "body.address.city",
        "body.address.zip",
    }
    assert "integer" in bad["path.order_id"]
    assert "required" in bad["query.dry_run"]
    assert "city" in bad["body.address.city"]
    missing_body = errors_of(httpx.put(f"{gateway.url}/echo/v1/orders/7?dry_run=true", headers=headers))
    assert missing_body == {"body": "A request body is required."}
    wrong_type = errors_of(httpx.put(f"{gateway.url}/echo/v1/orders/7?dry_run=maybe", headers=headers,
                                     content=VALID_ORDER))
    assert wrong_type.keys() == {"query.dry_run"}
    assert upstream.served() == 0


def test_a_valid_request_reaches_the_upstream_unchanged(start_gateway, publish, redis_client, world, upstream):
    publish_validated(publish, redis_client, upstream, ORDERS_DOCUMENT, "enforce")
    publish.route(upstream.url, version="v2")  # validation off: the same request, for comparison
    gateway = start_gateway()
    headers = {"X-API-Key": world.alice_key, "Content-Type": "application/json", "X-Attempt": "2",
               "X-Request-ID": "req-1"}

    seen = []
    for version in ("v1", "v2"):
        r = httpx.put(f"{gateway.url}/echo/v1/orders/%37?dry_run=false&extra=1".replace("v1", version),
                      headers=headers, content=VALID_ORDER)
        assert r.status_code == 200, r.text
        seen.append(r.json())
    validated, plain = seen
    assert validated["body_sha256"] == hashlib.sha256(VALID_ORDER).hexdigest()
    assert validated["body_size"] == len(VALID_ORDER)
    assert validated["raw_path"] == "/orders/%37"
    assert validated["query"] == "dry_run=false&extra=1"
    assert validated["headers"] == plain["headers"]  # same headers, same order, same Content-Length
    assert validated["body_sha256"] == plain["body_sha256"]


def test_a_body_over_the_limit_is_413_before_validation(start_gateway, publish, redis_client, world, upstream):
    version_id = ECHO_API_ID * 100 + 1
    raw, digest = contract.openapi_payload(ORDERS_DOCUMENT)
    redis_client.set(contract.openapi_key(version_id), raw)
    publish.route(upstream.url, version_id=version_id, max_body_bytes=64,
                  policies=VersionPolicies(request_validation="enforce"), openapi_sha256=digest)
    gateway = start_gateway()

    def chunks():
        yield VALID_ORDER  # no Content-Length: the limit is found while buffering
        yield VALID_ORDER

    r = httpx.put(f"{gateway.url}/echo/v1/orders/7?dry_run=true", content=chunks(),
                  headers={"X-API-Key": world.alice_key, "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("stored", ["missing", "replaced"])
def test_a_document_it_cannot_load_fails_closed_in_enforce(
    start_gateway, publish, redis_client, world, upstream, stored
):
    record = publish_validated(publish, redis_client, upstream, ECHO_DOCUMENT, "enforce")
    if stored == "missing":
        redis_client.delete(contract.openapi_key(record.version_id))
    else:
        redis_client.set(contract.openapi_key(record.version_id), contract.openapi_payload(ORDERS_DOCUMENT)[0])
    gateway = start_gateway()

    r = httpx.get(f"{gateway.url}/echo/v1/anything", headers={"X-API-Key": world.alice_key})
    assert r.status_code == 503
    assert r.json()["type"].endswith("validation-unavailable")


def test_a_json_body_is_invited_with_100_continue_then_validated(start_gateway, publish, redis_client, world, upstream):
    """The body is read only once the caller is admitted: a client that waits for 100
    Continue gets it, and its body is then validated (a refusal names the body's fields)."""
    publish_validated(publish, redis_client, upstream, ORDERS_DOCUMENT, "enforce")
    gateway = start_gateway()
    upstream.reset()

    def exchange(body: bytes) -> bytes:
        head = (b"PUT /echo/v1/orders/7?dry_run=true HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + world.alice_key.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
            sock.sendall(head)
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(body)
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        return response

    refused = exchange(b'{"item": "lamp", "address": {}}')
    accepted = exchange(VALID_ORDER)

    assert refused.startswith(b"HTTP/1.1 400 ")
    assert json.loads(refused.split(b"\r\n\r\n", 1)[1])["errors"] == [
        {"location": "body.address.city", "message": '"city" is a required property'}
    ]
    assert accepted.startswith(b"HTTP/1.1 200 ")
    assert json.loads(accepted.split(b"\r\n\r\n", 1)[1])["body_sha256"] == hashlib.sha256(VALID_ORDER).hexdigest()
    assert upstream.served() == 1


def test_a_trickled_json_body_is_cut_off_while_it_is_read(start_gateway, publish, redis_client, world, upstream):
    publish_validated(publish, redis_client, upstream, ORDERS_DOCUMENT, "enforce")
    gateway = start_gateway(GATEWAY_BODY_TIMEOUT_S="0.5", GATEWAY_BODY_MIN_RATE_BPS="1000")
    upstream.reset()
    head = (b"PUT /echo/v1/orders/7?dry_run=true HTTP/1.1\r\nHost: gw\r\nX-API-Key: " + world.alice_key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 408 "), response[:200]
    assert time.monotonic() - started < 5
    assert upstream.served() == 0
