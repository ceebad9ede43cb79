"""Which JSON Schema validator request_validation uses: ``python bench/json_validators.py``.

Validates one typical JSON request body (the bench's order: nested object, array,
pattern, nullable) against its schema, compiled once, with each candidate that is
installed: jsonschema (pinned, pure Python), fastjsonschema (generated Python) and
jsonschema-rs (Rust; the one kept, pinned). Prints microseconds per valid body and
per invalid body (every error with its location, as ``enforce`` reports), and the
load average, since the box is shared. A second or two per candidate.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import timeit
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import VALIDATION_BODY, VALIDATION_DOCUMENT
from gateway.policies.request_validation.openapi import nullable_to_json_schema

SCHEMA: dict[str, Any] = nullable_to_json_schema(
    VALIDATION_DOCUMENT["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[index]
)
VALID = json.loads(VALIDATION_BODY)
INVALID = {"item": 5, "quantity": 0, "address": {"zip": "1"}}


def candidates() -> dict[str, tuple[Any, Any]]:
    """name -> (validate a valid body, list the errors of an invalid one)."""
    out: dict[str, tuple[Any, Any]] = {}
    try:
        jsonschema = importlib.import_module("jsonschema")
        js = jsonschema.Draft4Validator(SCHEMA)
        out[f"jsonschema {version('jsonschema')}"] = (
            lambda: js.is_valid(VALID), lambda: list(js.iter_errors(INVALID)))
    except ImportError:
        pass
    try:
        fastjsonschema = importlib.import_module("fastjsonschema")
        fj = fastjsonschema.compile({**SCHEMA, "$schema": "http://json-schema.org/draft-04/schema#"})

        def fj_invalid() -> list[Any]:
            try:
                fj(INVALID)
            except fastjsonschema.JsonSchemaValueException as exc:
                return [exc]  # only the first error: it stops there
            return []

        out[f"fastjsonschema {version('fastjsonschema')}"] = (lambda: fj(VALID), fj_invalid)
    except ImportError:
        pass
    try:
        jsonschema_rs = importlib.import_module("jsonschema_rs")
        rs = jsonschema_rs.Draft4Validator(SCHEMA)
        out[f"jsonschema-rs {version('jsonschema-rs')}"] = (
            lambda: rs.is_valid(VALID), lambda: list(rs.iter_errors(INVALID)))
    except ImportError:
        pass
    return out


def main() -> int:
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for name, (valid, invalid) in candidates().items():
        n = 2000
        per_valid = min(timeit.repeat(valid, number=n, repeat=3)) / n * 1e6
        per_invalid = min(timeit.repeat(invalid, number=n // 4, repeat=3)) / (n // 4) * 1e6
        print(f"{name:24} valid {per_valid:8.2f} us   invalid (errors listed) {per_invalid:8.2f} us")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
