"""``%2F`` and ``%2E`` (any case) in ``/{api}/{version}`` get 400 before routing; in the
rest of the path they are not decoded and reach the upstream verbatim, as nginx and
Envoy forward them by default."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import raw_request


def get(target: str, key: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize(
    "target",
    ["/echo%2Fv1/x", "/echo%2fv1/x", "/echo/v1%2E/x", "/echo/%2e%2e/x", "/%2E/echo/v1/x", "/echo/v1%2F..%2F/x"],
)
def test_an_encoded_slash_or_dot_in_the_prefix_gets_400(start_gateway, publish, world, counter, target):
    publish.route(counter.url)
    gateway = start_gateway()

    response = raw_request(gateway.port, get(target, world.alice_key))

    assert response.status == 400, response.body
    assert response.header("Content-Type") == "application/problem+json"
    assert counter.accepted == 0


def test_encoded_slashes_and_dots_below_the_prefix_are_forwarded_verbatim(start_gateway, world):
    gateway = start_gateway()

    response = raw_request(gateway.port, get("/echo/v1/a%2Fb/%2e%2e/%2E/c%2f", world.alice_key))

    assert response.status == 200, response.body
    assert response.json()["raw_path"] == "/a%2Fb/%2e%2e/%2E/c%2f"
