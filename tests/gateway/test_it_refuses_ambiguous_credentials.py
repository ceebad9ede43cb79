"""One request, one credential. A repeated key header, a repeated Authorization header, a key
together with a bearer token, or a query key together with a header, get 400 problem+json
and nothing goes upstream: no "first one wins"."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import ALICE_APP, raw_request

TOKEN = "oauth-access-token-for-ambiguity-test-000000"


def send(port: int, target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: gw", *(f"{n}: {v}" for n, v in headers), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


CASES = {
    "two key headers": ("/echo/v1/", [("X-API-Key", "{alice}"), ("X-API-Key", "{alice}")]),
    "two key headers, differing case": ("/echo/v1/", [("X-API-Key", "{alice}"), ("x-api-key", "{bob}")]),
    "two authorization headers": (
        "/echo/v1/", [("Authorization", "Bearer {token}"), ("Authorization", "Bearer {alice}")]
    ),
    "key and bearer token": ("/echo/v1/", [("X-API-Key", "{alice}"), ("Authorization", "Bearer {token}")]),
    "query key and key header": ("/echo/v1/?api_key={alice}", [("X-API-Key", "{alice}")]),
    "two query keys": ("/echo/v1/?api_key={alice}&api%5Fkey={alice}", []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ambiguous_credentials_get_400(start_gateway, publish, world, counter, case):
    publish.route(counter.url, allow_query_key=True)
    publish.token(ALICE_APP, TOKEN)
    gateway = start_gateway()
    target, headers = CASES[case]
    values = {"alice": world.alice_key, "bob": world.bob_key, "token": TOKEN}
    target = target.format(**values)
    headers = [(name, value.format(**values)) for name, value in headers]

    response = raw_request(gateway.port, send(gateway.port, target, headers))

    assert response.status == 400, response.body
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["type"].endswith("/ambiguous-credentials")
    assert counter.accepted == 0


def test_one_credential_with_an_unrelated_authorization_scheme_is_fine(start_gateway, world):
    gateway = start_gateway()
    headers = [("X-API-Key", world.alice_key), ("Authorization", "Basic dXNlcjpwYXNz")]

    response = raw_request(gateway.port, send(gateway.port, "/echo/v1/", headers))

    assert response.status == 200, response.body
    assert ["Authorization", "Basic dXNlcjpwYXNz"] in response.json()["headers"]
