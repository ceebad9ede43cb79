"""The OpenAPI compiler behind request_validation, without sockets: path templates
(literal paths first, fewer templates first), 3.0's nullable against 3.1's type lists,
parameter conversion (arrays, booleans, numbers), $refs to components and parameters,
and the dialect limits it states (Swagger 2.0, $refs outside the document)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.policies.request_validation.openapi import (
    CompiledDocument,
    body_violations,
    document_problem,
    parameter_violations,
)


def doc(version: str, paths: dict, components: dict | None = None) -> dict:
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths,
            "components": components or {}}


OK = {"responses": {"200": {"description": "ok"}}}


def test_literal_paths_win_then_fewer_templates():
    compiled = CompiledDocument(doc("3.0.3", {
        "/pets/{id}/toys/{toy}": {"get": OK},
        "/pets/{id}": {"get": OK, "delete": OK},
        "/pets/mine": {"get": OK},
    }))
    mine = compiled.find("/pets/mine")
    one = compiled.find("/pets/12")
    toy = compiled.find("/pets/12/toys/ball")
    assert mine is not None
    assert mine[1] == {}
    assert one is not None
    assert one[1] == {"id": "12"}
    assert set(one[0]) == {"GET", "HEAD", "DELETE"}
    assert toy is not None
    assert toy[1] == {"id": "12", "toy": "ball"}
    assert compiled.find("/pets") is None
    assert compiled.find("/pets/12/") is None


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_null_is_allowed_as_each_dialect_says(version):
    note = {"type": "string", "nullable": True} if version.startswith("3.0") else {"type": ["string", "null"]}
    compiled = CompiledDocument(doc(version, {"/n": {"post": {"requestBody": {"content": {"application/json": {
        "schema": {"type": "object", "properties": {"note": note, "size": {"type": "integer"}}}}}}, **OK}}}))
    body = compiled.find("/n")[0]["POST"].body  # type: ignore[index]
    assert body_violations(body, "application/json", b'{"note": null}') == []
    assert body_violations(body, "application/json", b'{"size": null}') == [
        {"location": "body.size", "message": "null is not of type \"integer\""}
    ]


def test_parameters_are_converted_before_they_are_validated():
    compiled = CompiledDocument(doc("3.0.3", {"/p": {"get": {"parameters": [
        {"$ref": "#/components/parameters/Limit"},
        {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "integer"}}},
        {"name": "flag", "in": "query", "schema": {"type": "boolean"}},
        {"name": "X-Ids", "in": "header", "schema": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
    ], **OK}}}, {"parameters": {"Limit": {"name": "limit", "in": "query", "required": True,
                                          "schema": {"type": "number", "maximum": 10}}}}))
    operation = compiled.find("/p")[0]["GET"]  # type: ignore[index]

    def check(query: dict, headers: dict | None = None) -> set[str]:
        return {v["location"] for v in parameter_violations(operation, {}, query, CIMultiDict(headers or {}))}

    assert check({"limit": ["2.5"], "tag": ["1", "2"], "flag": ["true"]}, {"X-Ids": "a, b"}) == set()
    assert check({}) == {"query.limit"}
    assert check({"limit": ["11"], "tag": ["1", "x"], "flag": ["yes"]}, {"X-Ids": "a,b,c"}) == {
        "query.limit", "query.tag.1", "query.flag", "header.x-ids",  # the array item at fault
    }


def test_what_it_cannot_validate_is_named():
    assert "only OpenAPI 3.0 and 3.1" in document_problem({"swagger": "2.0", "paths": {}})
    external = doc("3.0.3", {"/x": {"post": {"requestBody": {"content": {"application/json": {
        "schema": {"$ref": "https://example.com/schemas/x.json"}}}}, **OK}}})
    assert document_problem(external)
    assert document_problem(doc("3.1.0", {"/x": {"get": OK}})) == ""
