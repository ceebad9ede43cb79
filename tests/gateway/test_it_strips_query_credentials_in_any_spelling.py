"""The key's query parameter never reaches the upstream, whatever its case or percent-
encoding, and whether or not the version honours query keys. ``apikey`` is not a name
Tollway accepts, so it is the upstream's own parameter and passes."""

from __future__ import annotations

from tests.gateway.conftest import raw_request

SPELLINGS = ["api_key", "API_KEY", "Api_Key", "api%5Fkey", "Api%5fKey", "%41PI_KEY", "api%5fKEY"]


def test_every_spelling_is_stripped_where_query_keys_are_off(start_gateway, world):
    gateway = start_gateway()
    query = "&".join(f"{name}={world.alice_key}" for name in SPELLINGS) + "&apikey=theirs&x=1"
    request = (
        f"GET /echo/v1/q?{query} HTTP/1.1\r\nHost: gw\r\nX-API-Key: {world.alice_key}\r\nConnection: close\r\n\r\n"
    )

    response = raw_request(gateway.port, request.encode())

    assert response.status == 200, response.body
    assert response.json()["query"] == "apikey=theirs&x=1"
    assert world.alice_key.encode() not in response.body


def test_every_spelling_is_stripped_where_query_keys_are_on(start_gateway, publish, world, upstream):
    publish.route(upstream.url, allow_query_key=True)
    gateway = start_gateway()
    # api_key authenticates; the spellings in another case are not read as keys (a second
    # api_key, encoded or not, would be an ambiguous credential), but are stripped all the same.
    other_case = [name for name in SPELLINGS if name.lower() not in ("api_key", "api%5fkey")]
    query = f"api_key={world.alice_key}&" + "&".join(f"{name}=x" for name in other_case) + "&apikey=theirs"
    request = f"GET /echo/v1/q?{query} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"

    response = raw_request(gateway.port, request.encode())

    assert response.status == 200, response.body
    assert response.json()["query"] == "apikey=theirs"
