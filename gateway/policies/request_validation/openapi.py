"""An OpenAPI document compiled into request checks: paths, methods, parameters, JSON bodies.

Compiled once per published document (the policy caches by its SHA-256); a request costs
a dict lookup (or a few regex matches for templated paths), a conversion per declared
parameter and, for a JSON body, one orjson parse and one jsonschema_rs validation
(chosen by measurement, docs/performance.md).

Dialects: a 3.0 document's schemas are validated as JSON Schema Draft 4 after turning
``nullable: true`` into a ``"null"`` type (and a ``null`` enum member); 3.1 documents are
Draft 2020-12 as the spec says. Not handled: ``readOnly``/``writeOnly`` (a read-only
property in a request is not refused), ``discriminator`` (``oneOf`` still applies),
parameter styles other than the defaults (query ``form`` exploded, path and header
``simple``), ``content`` on parameters, cookie parameters, non-JSON bodies (only their
media type is checked), ``format`` (annotations only) and $refs outside the document
(never fetched).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

import jsonschema_rs
import orjson

NO_PATH_PARAMETERS: Mapping[str, str] = MappingProxyType({})
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_ERRORS = 20  # in one answer; a body can fail in thousands of places

Violation = dict[str, str]  # {"location": "body.address.city", "message": "..."}


class DocumentUnusable(ValueError):
    """A document the gateway cannot compile (the portal validated it, so rare)."""


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follows local $refs (#/components/...) of a parameter or request body."""
    for _ in range(20):
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise DocumentUnusable(f"only local $refs are followed, not {ref!r}")
        found: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(found, dict) or part not in found:
                raise DocumentUnusable(f"$ref {ref!r} names nothing")
            found = found[part]
        node = found
    raise DocumentUnusable("$refs loop")


def nullable_to_json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema says it, everywhere in ``schema``."""
    if isinstance(schema, list):
        return [nullable_to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: nullable_to_json_schema(value) for key, value in schema.items()}
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


class SchemaCompiler:
    def __init__(self, document: Mapping[str, Any]) -> None:
        version = str(document.get("openapi") or document.get("swagger") or "")
        self.v31 = version.startswith("3.1")
        if not (self.v31 or version.startswith("3.0")):
            raise DocumentUnusable(f"it is version {version or '(none)'}; only OpenAPI 3.0 and 3.1 are validated")
        components = document.get("components") or {}
        # Every schema is compiled with the document's components beside it, so that
        # "#/components/schemas/X" resolves against the schema's own root.
        self.components = components if self.v31 else nullable_to_json_schema(components)

    def compile(self, schema: Any) -> Any:
        if not isinstance(schema, dict) or not schema:
            return None  # {} accepts everything: nothing to run
        root = dict(schema if self.v31 else nullable_to_json_schema(schema))
        if self.components:
            root["components"] = self.components
        try:
            if self.v31:
                return jsonschema_rs.Draft202012Validator(root, offline=True)
            return jsonschema_rs.Draft4Validator(root, offline=True)
        except (ValueError, jsonschema_rs.ReferencingError) as exc:
            raise DocumentUnusable(str(exc)) from exc


def _kind(document: Mapping[str, Any], schema: Any) -> tuple[str, str]:
    """The JSON type a parameter's text converts to, and its items' for an array."""
    schema = _resolve(document, schema)
    if not isinstance(schema, dict):
        return "", ""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "")
    items = _resolve(document, schema.get("items")) if kind == "array" else None
    item_kind = items.get("type") if isinstance(items, dict) else ""
    return (kind if isinstance(kind, str) else ""), (item_kind if isinstance(item_kind, str) else "")


_INTEGER = re.compile(r"^-?[0-9]{1,30}$")


def _convert(text: str, kind: str) -> Any:
    """A parameter's text as its schema's type; unconvertible text stays text, which the
    schema then refuses with a type error naming what was expected."""
    if kind == "integer" and _INTEGER.match(text):
        return int(text)
    if kind == "number":
        try:
            return float(text) if _INTEGER.match(text) is None else int(text)
        except ValueError:
            return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path, query, header
    required: bool
    kind: str
    item_kind: str
    validator: Any  # a jsonschema_rs validator, or None


@dataclass(frozen=True, slots=True)
class Body:
    required: bool
    media: tuple[str, ...]  # declared media types, lower case ("application/json", "text/*", "*/*")
    json_validators: dict[str, Any]  # JSON media type -> validator or None (any JSON)


@dataclass(frozen=True, slots=True)
class Operation:
    parameters: tuple[Parameter, ...]
    body: Body | None
    query: bool = False  # whether a parameter is in the query: only then is the query parsed
    path: bool = False  # the same for path parameters (their percent-decoding)


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


class CompiledDocument:
    def __init__(self, document: Mapping[str, Any]) -> None:
        if not isinstance(document, Mapping):
            raise DocumentUnusable("the document is not an object")
        schemas = SchemaCompiler(document)
        # Exact paths answer a prebuilt (operations, no path parameters) pair: a request
        # allocates nothing to find its operation (allocations cost GC time, see find()).
        self.exact: dict[str, tuple[dict[str, Operation], Mapping[str, str]]] = {}
        self.templated: list[tuple[re.Pattern[str], list[str], dict[str, Operation]]] = []
        for template, item in (document.get("paths") or {}).items():
            item = _resolve(document, item)
            if not isinstance(template, str) or not isinstance(item, dict):
                continue
            shared = item.get("parameters") or []
            operations = {
                method.upper(): self._operation(document, schemas, shared, op)
                for method, op in item.items()
                if method in METHODS and isinstance(op, dict)
            }
            if "GET" in operations and "HEAD" not in operations:
                operations["HEAD"] = operations["GET"]  # HEAD is GET without the body
            if "{" in template:
                pattern = "".join(
                    "([^/]+)" if part.startswith("{") else re.escape(part)
                    for part in re.split(r"(\{[^}/]+\})", template)
                )
                names = re.findall(r"\{([^}/]+)\}", template)
                self.templated.append((re.compile(f"^{pattern}$"), names, operations))
            else:
                self.exact[template] = (operations, NO_PATH_PARAMETERS)
        # Fewer template segments first: /pets/mine beats /pets/{id} (exact paths already win).
        self.templated.sort(key=lambda entry: len(entry[1]))

    def _operation(
        self, document: Mapping[str, Any], schemas: SchemaCompiler, shared: Any, op: dict[str, Any]
    ) -> Operation:
        declared: dict[tuple[str, str], Any] = {}
        for raw in [*(shared if isinstance(shared, list) else []), *(op.get("parameters") or [])]:
            param = _resolve(document, raw)
            if isinstance(param, dict) and param.get("in") in ("path", "query", "header"):
                name = str(param.get("name", ""))
                key = (param["in"], name.lower() if param["in"] == "header" else name)
                declared[key] = param  # the operation's override the path item's
        parameters = []
        for (location, name), param in declared.items():
            if location == "header" and name in ("accept", "content-type", "authorization"):
                continue  # OpenAPI: these are described elsewhere and ignored as parameters
            schema = param.get("schema")
            kind, item_kind = _kind(document, schema)
            parameters.append(
                Parameter(
                    name=name,
                    location=location,
                    required=bool(param.get("required")) or location == "path",
                    kind=kind,
                    item_kind=item_kind,
                    validator=schemas.compile(schema),
                )
            )
        body = None
        request_body = _resolve(document, op.get("requestBody"))
        if isinstance(request_body, dict):
            content = request_body.get("content") or {}
            json_validators = {
                media.lower(): schemas.compile((spec or {}).get("schema"))
                for media, spec in content.items()
                if is_json(media.lower().split(";")[0].strip())
            }
            body = Body(
                required=bool(request_body.get("required")),
                media=tuple(media.lower().split(";")[0].strip() for media in content),
                json_validators=json_validators,
            )
        return Operation(
            parameters=tuple(parameters),
            body=body,
            query=any(p.location == "query" for p in parameters),
            path=any(p.location == "path" for p in parameters),
        )

    def find(self, path: str) -> tuple[dict[str, Operation], Mapping[str, str]] | None:
        """The operations at ``path`` and its path parameters (still percent-encoded).

        The request path allocates as little as it can: every container allocated per
        request brings the next garbage collection closer, and in a worker holding the
        whole published state those collections cost more than the checks themselves
        (docs/performance.md, request_validation)."""
        found = self.exact.get(path)
        if found is not None:
            return found
        for pattern, names, ops in self.templated:
            match = pattern.match(path)
            if match is not None:
                return ops, dict(zip(names, match.groups(), strict=True))
        return None


def _location(prefix: str, instance_path: list[str | int], extra: str = "") -> str:
    parts = [prefix, *(str(p) for p in instance_path)]
    if extra:
        parts.append(extra)
    return ".".join(parts)


def schema_violations(validator: Any, value: Any, prefix: str) -> list[Violation]:
    """Every way ``value`` fails ``validator``, each at its location below ``prefix``.
    The common case (valid) is one is_valid call."""
    if validator is None or validator.is_valid(value):
        return []
    out: list[Violation] = []
    for error in validator.iter_errors(value):
        kind = error.kind
        missing = kind.property if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required) else ""
        out.append({"location": _location(prefix, list(error.instance_path), str(missing)), "message": error.message})
        if len(out) >= MAX_ERRORS:
            break
    return out


def media_matches(media: str, declared: tuple[str, ...]) -> bool:
    for item in declared:
        if item == media or item == "*/*" or (item.endswith("/*") and media.startswith(item[:-1])):
            return True
    return False


def json_body_violations(body: Body, validator: Any, raw: bytes) -> list[Violation]:
    """A buffered JSON body against its compiled schema (``validator``: json_validator's
    answer; None checks only that it is JSON). The common case (valid) is one orjson
    parse and one is_valid call."""
    if not raw:
        return [{"location": "body", "message": "A request body is required."}] if body.required else []
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [{"location": "body", "message": f"Not valid JSON: {exc}"}]
    return schema_violations(validator, value, "body")


def json_body_valid(validator: Any, raw: bytes) -> bool:
    """Whether ``raw`` is JSON that ``validator`` accepts (never None): the valid body's
    fast path, one parse and one is_valid call; json_body_violations says what is wrong."""
    try:
        return bool(validator.is_valid(orjson.loads(raw)))
    except orjson.JSONDecodeError:
        return False


def parse_query(query: str) -> dict[str, list[str]]:
    """``parse_qs(query, keep_blank_values=True)``, with a fast path for the usual query
    that needs no decoding (no ``%``, no ``+``): the same answer in a fraction of the time."""
    if "%" in query or "+" in query:
        return parse_qs(query, keep_blank_values=True)
    out: dict[str, list[str]] = {}
    for part in query.split("&"):
        if part:  # parse_qs skips empty fields ("a=1&&b=2")
            name, _, value = part.partition("=")
            found = out.get(name)
            if found is None:
                out[name] = [value]
            else:
                found.append(value)
    return out


def body_violations(body: Body, media: str, raw: bytes | None) -> list[Violation]:
    """``raw`` is the buffered body when the media type is JSON with a schema, else None."""
    if not media:
        return [{"location": "body", "message": "A request body is required."}] if body.required else []
    if body.media and not media_matches(media, body.media):
        return [{"location": "header.content-type",
                 "message": f"{media} is not a declared media type ({', '.join(body.media)})."}]
    if raw is None:
        return []
    return json_body_violations(body, json_validator(body, media), raw)


def json_validator(body: Body, media: str) -> Any:
    found = body.json_validators.get(media)
    if found is None and media not in body.json_validators:
        # Declared as application/*+json or */*: the first JSON schema that applies.
        for declared, validator in body.json_validators.items():
            if media_matches(media, (declared,)):
                return validator
    return found


def parameter_violations(
    operation: Operation, path_params: Mapping[str, str], query: Mapping[str, list[str]], headers: Any
) -> list[Violation]:
    return check_parameters(operation, path_params, query, headers) or []


def check_parameters(
    operation: Operation, path_params: Mapping[str, str], query: Mapping[str, list[str]], headers: Any
) -> list[Violation] | None:
    """parameter_violations, None when there are none: the valid request (the usual one)
    allocates no list, only the converted values."""
    out: list[Violation] | None = None
    for param in operation.parameters:
        location = param.location
        name = param.name
        value: Any
        if param.kind == "array":
            if location == "path":
                texts: Any = (path_params[name],) if name in path_params else ()
            elif location == "query":
                texts = query.get(name) or ()
            else:
                texts = [t.strip() for text in headers.getall(name, ()) for t in text.split(",")]
            present = bool(texts)
            if present and param.validator is not None:
                value = [_convert(t, param.item_kind) for t in texts]
        else:
            if location == "path":
                text = path_params.get(name)
            elif location == "query":
                texts = query.get(name)
                text = texts[0] if texts else None
            else:
                text = headers.get(name)
            present = text is not None
            if present and param.validator is not None:
                value = _convert(text, param.kind)  # type: ignore[arg-type]  # present: a str
        if not present:
            if param.required:
                out = out or []
                out.append({"location": f"{location}.{name}",
                            "message": f"The {location} parameter {name} is required."})
            continue
        if param.validator is None or param.validator.is_valid(value):
            continue
        out = out or []
        out += schema_violations(param.validator, value, f"{location}.{name}")
    return out


def document_problem(document: object) -> str:
    """Why the gateway could not validate against ``document`` ("" when it can): the
    portal asks before it lets request_validation on, so the gateway never meets it."""
    try:
        CompiledDocument(document)  # type: ignore[arg-type]  # checked inside
    except DocumentUnusable as exc:
        return str(exc)
    return ""


def document_from_bytes(raw: bytes) -> CompiledDocument:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DocumentUnusable(f"not JSON: {exc}") from exc
    return CompiledDocument(document)
