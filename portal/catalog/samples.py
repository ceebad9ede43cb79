"""Code samples for every operation of a version's OpenAPI document: curl, Python
(httpx) and JavaScript (fetch), called through the gateway.

The key is always a named placeholder (the environment variable TOLLWAY_API_KEY):
the portal never holds a key in readable form, and a sample pasted into a ticket or
a chat must not carry a secret. Path and query parameters take the document's
example or default, else an upper-case placeholder; a JSON body takes the
document's example, else a minimal value built from its schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

KEY_ENV = "TOLLWAY_API_KEY"
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
# A schema nested deeper than this (or a $ref cycle) becomes an empty value.
MAX_DEPTH = 4
_PLACEHOLDER = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class Sample:
    language: str  # "curl", "python", "javascript"
    title: str
    code: str


@dataclass(frozen=True)
class OperationSamples:
    anchor: str
    method: str
    path: str
    summary: str
    samples: tuple[Sample, ...]


def _resolve(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow local "#/..." $refs; anything else (or a cycle too deep) is {}."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth <= MAX_DEPTH:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        node = target if target is not None else {}
        depth += 1
    return node if isinstance(node, dict) else {}


def _example_of_schema(doc: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    schema = _resolve(doc, schema)
    for field in ("example", "default"):
        if field in schema:
            return schema[field]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if depth >= MAX_DEPTH:
        return None
    for combinator in ("allOf", "oneOf", "anyOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            if combinator == "allOf":
                merged: dict[str, Any] = {}
                for part in options:
                    value = _example_of_schema(doc, part, depth + 1)
                    if isinstance(value, dict):
                        merged.update(value)
                return merged
            return _example_of_schema(doc, options[0], depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        # Required properties only when the schema names some: the smallest valid body.
        names = [n for n in props if n in required] or list(props)
        return {n: _example_of_schema(doc, props[n], depth + 1) for n in names}
    if kind == "array":
        return [_example_of_schema(doc, schema.get("items", {}), depth + 1)]
    return {"integer": 0, "number": 0, "boolean": False}.get(str(kind), "string")


def _param_value(doc: dict[str, Any], param: dict[str, Any]) -> str:
    schema = _resolve(doc, param.get("schema", {}))
    for source in (param, schema):
        for field in ("example", "default"):
            if field in source and not isinstance(source[field], (dict, list)):
                value = source[field]
                return str(value).lower() if isinstance(value, bool) else str(value)
    return _PLACEHOLDER.sub("_", str(param.get("name", "value"))).strip("_").upper() or "VALUE"


def _json_body(doc: dict[str, Any], operation: dict[str, Any]) -> Any:
    body = _resolve(doc, operation.get("requestBody", {}))
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
    if media is None:
        return None
    entry = content[media] if isinstance(content[media], dict) else {}
    if "example" in entry:
        return entry["example"]
    examples = entry.get("examples")
    if isinstance(examples, dict):
        for ex in examples.values():
            ex = _resolve(doc, ex)
            if "value" in ex:
                return ex["value"]
    return _example_of_schema(doc, entry.get("schema", {}))


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _samples(method: str, url: str, key_header: str, body: Any) -> tuple[Sample, ...]:
    upper = method.upper()
    payload = json.dumps(body, indent=2) if body is not None else None

    curl = [f'curl -X {upper} {_shell_quote(url)}' if upper != "GET" else f"curl {_shell_quote(url)}",
            f'  -H "{key_header}: ${KEY_ENV}"']
    if payload is not None:
        curl += ['  -H "Content-Type: application/json"', f"  --data {_shell_quote(json.dumps(body))}"]

    python = ["import os", "", "import httpx", ""]
    key_expr = f"os.environ[{json.dumps(KEY_ENV)}]"
    py_args = [json.dumps(upper), json.dumps(url), f"headers={{{json.dumps(key_header)}: {key_expr}}}"]
    if payload is not None:
        python.append(f"payload = {_python_literal(body)}")
        py_args.append("json=payload")
    python += ["response = httpx.request(", *(f"    {a}," for a in py_args), ")", "response.raise_for_status()",
               "print(response.text)"]

    js_headers = [f"{json.dumps(key_header)}: process.env.{KEY_ENV}"]
    js_options = [f"method: {json.dumps(upper)}"]
    if payload is not None:
        js_headers.append('"Content-Type": "application/json"')
    js_options.append("headers: {\n    " + ",\n    ".join(js_headers) + ",\n  }")
    if payload is not None:
        js_options.append("body: JSON.stringify(" + payload.replace("\n", "\n  ") + ")")
    javascript = [f"const response = await fetch({json.dumps(url)}, {{",
                  *(f"  {o}," for o in js_options), "});",
                  "if (!response.ok) throw new Error(`HTTP ${response.status}`);",
                  "console.log(await response.text());"]
    return (
        Sample("curl", "curl", " \\\n".join(curl)),
        Sample("python", "Python (httpx)", "\n".join(python)),
        Sample("javascript", "JavaScript (fetch)", "\n".join(javascript)),
    )


def _python_literal(value: Any) -> str:
    """JSON as a Python literal (true/false/null spelt the Python way)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return repr(value)
    return json.dumps(value)


def operation_samples(document: Any, *, base_url: str, key_header: str) -> list[OperationSamples]:
    """One entry per (path, method) of an OpenAPI 3 (or Swagger 2) document, in the
    document's order. A malformed document gives what can be read of it, never an error."""
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        return []
    out: list[OperationSamples] = []
    anchors: set[str] = set()
    for path, item in document["paths"].items():
        if not isinstance(item, dict):
            continue
        shared = [p for p in item.get("parameters", []) if isinstance(p, dict)]
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            params = {}
            for raw in [*shared, *(p for p in operation.get("parameters", []) if isinstance(p, dict))]:
                param = _resolve(document, raw)
                if "name" in param:
                    params[(param.get("in"), param["name"])] = param  # the operation's own wins
            concrete = str(path)
            query = []
            for (where, name), param in params.items():
                if where == "path":
                    concrete = concrete.replace("{" + str(name) + "}", quote(_param_value(document, param), safe=""))
                elif where == "query" and (param.get("required") or "example" in param):
                    query.append((str(name), _param_value(document, param)))
            url = base_url.rstrip("/") + concrete + (f"?{urlencode(query)}" if query else "")
            body = _json_body(document, operation) if method in ("post", "put", "patch") else None
            anchor = "op-" + _PLACEHOLDER.sub("-", f"{method}-{path}").strip("-").lower()
            if anchor in anchors:  # "/a-b" and "/a_b" read alike
                anchor = f"{anchor}-{len(out)}"
            anchors.add(anchor)
            out.append(OperationSamples(
                anchor=anchor,
                method=method.upper(), path=str(path), summary=str(operation.get("summary") or ""),
                samples=_samples(method, url, key_header, body),
            ))
    return out
