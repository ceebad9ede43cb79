"""Code samples are generated from the OpenAPI document: path and query parameters
from examples (or placeholders), JSON bodies from examples or schemas ($ref too),
and never a key, only the TOLLWAY_API_KEY placeholder."""

from __future__ import annotations

import json

from portal.catalog.samples import operation_samples

DOC = {
    "openapi": "3.0.3",
    "paths": {
        "/items/{item_id}": {
            "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"summary": "One item", "parameters": [
                {"name": "fields", "in": "query", "required": True, "example": "name,price"},
                {"name": "page", "in": "query", "schema": {"type": "integer"}},
            ]},
            "put": {"requestBody": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}},
            "x-not-an-operation": {},
        },
        "/orders": {"post": {"requestBody": {"content": {"application/json": {"example": {"qty": 2, "rush": True}}}}}},
    },
    "components": {"schemas": {"Item": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "example": "lamp"}, "price": {"type": "number"},
        "self": {"$ref": "#/components/schemas/Item"}}}}},
}


def test_every_operation_gets_three_samples_built_from_the_document() -> None:
    ops = operation_samples(DOC, base_url="https://gw.example/shop/v1/", key_header="X-API-Key")
    assert [(o.method, o.path) for o in ops] == [("GET", "/items/{item_id}"), ("PUT", "/items/{item_id}"),
                                                 ("POST", "/orders")]
    assert len({o.anchor for o in ops}) == 3
    get, put, post = ({s.language: s.code for s in o.samples} for o in ops)
    assert set(get) == {"curl", "python", "javascript"}
    # Placeholder for the path parameter, the required query parameter's example, optional ones left out.
    assert "'https://gw.example/shop/v1/items/ITEM_ID?fields=name%2Cprice'" in get["curl"]
    assert "page=" not in get["curl"]
    assert '-H "X-API-Key: $TOLLWAY_API_KEY"' in get["curl"]
    assert 'os.environ["TOLLWAY_API_KEY"]' in get["python"]
    assert "process.env.TOLLWAY_API_KEY" in get["javascript"]
    # $ref body: required properties only, examples used.
    assert """--data '{"name": "lamp"}'""" in put["curl"]
    assert 'payload = {"name": "lamp"}' in put["python"]
    # A media example wins; Python spells booleans its own way, JavaScript keeps JSON.
    assert 'payload = {"qty": 2, "rush": True}' in post["python"]
    assert json.loads(post["javascript"].split("JSON.stringify(")[1].split(")")[0]) == {"qty": 2, "rush": True}
    assert "-X POST" in post["curl"]


def test_a_malformed_document_gives_no_samples_and_no_error() -> None:
    assert operation_samples(None, base_url="x", key_header="k") == []
    assert operation_samples({"paths": []}, base_url="x", key_header="k") == []
    assert operation_samples({"paths": {"/a": "nope"}}, base_url="x", key_header="k") == []
