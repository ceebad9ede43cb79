"""Dot segments (RFC 3986 §5.2.4) are resolved before routing: the upstream receives the
resolved path, joined onto its base path; a path that climbs above ``/{api}/{version}``,
or a dot segment in that prefix, gets 400 and never reaches an upstream."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import raw_request


def get(port: int, target: str, key: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n".encode()


@pytest.mark.parametrize(
    ("target", "seen"),
    [
        ("/echo/v1/a/./b/../c", "/a/c"),
        ("/echo/v1/a/b/..", "/a/"),
        ("/echo/v1/./x/.", "/x/"),
        ("/echo/v1/a/../b?q=1", "/b"),
    ],
)
def test_the_upstream_receives_the_resolved_path(start_gateway, world, target, seen):
    gateway = start_gateway()

    response = raw_request(gateway.port, get(gateway.port, target, world.alice_key))

    assert response.status == 200, response.body
    assert response.json()["raw_path"] == seen


def test_the_resolved_path_is_joined_onto_the_upstream_base_path(start_gateway, publish, world, upstream):
    publish.route(upstream.url + "/base")
    gateway = start_gateway()

    response = raw_request(gateway.port, get(gateway.port, "/echo/v1/x/../y", world.alice_key))

    assert response.status == 200, response.body
    assert response.json()["raw_path"] == "/base/y"


@pytest.mark.parametrize(
    "target",
    [
        "/echo/v1/../../_tollway/metrics",
        "/echo/v1/..",
        "/echo/v1/a/../../v1/x",  # leaves the version, even though it names it again
        "/echo/./v1/x",
        "/./echo/v1/x",
        "/echo/../echo/v1/x",
    ],
)
def test_climbing_above_the_version_prefix_gets_400(start_gateway, publish, world, counter, target):
    publish.route(counter.url)
    gateway = start_gateway()

    response = raw_request(gateway.port, get(gateway.port, target, world.alice_key))

    assert response.status == 400, response.body
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["type"].endswith("/bad-request")
    assert counter.accepted == 0
