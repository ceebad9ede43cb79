"""The declarative configuration's JSON Schema, as Python data.

Field lists come from the services that write them (catalog's API_FIELDS, VERSION_FIELDS
and CORS_FIELDS, plans' PLAN_FIELDS and OVERRIDE_FIELDS, the limits from plans.limits),
so a field added there without a schema entry fails tests/portal/declarative, and
docs/tollway-config.schema.json is this module's output (a test keeps them equal).
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway import route_policies
from portal.catalog.selectors import RedisFailureMode, Visibility, lifecycle_states
from portal.plans.limits import LIMITS

SCHEMA_ID = "https://tollway.dev/schemas/tollway-config.schema.json"
FORMAT_VERSION = 1

_SLUG = {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "minLength": 1}
_TEXT = {"type": "string"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_DATETIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
# Money as a string, so 0.1 stays 0.1 (YAML floats would not).
_MONEY = {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,4})?$"}

API_PROPERTIES: dict[str, Any] = {
    "slug": {**_SLUG, "maxLength": 80, "description": "Unique; the first segment of the gateway's route."},
    "name": {"type": "string", "minLength": 1, "maxLength": 120},
    "summary": {"type": "string", "maxLength": 280},
    "description": {**_TEXT, "description": "Markdown."},
    "tags": _STRINGS,
    "visibility": {"enum": [str(v) for v in Visibility]},
}

# A version's gateway options (the rest of catalog.services.VERSION_FIELDS is lifecycle and text).
VERSION_OPTION_PROPERTIES: dict[str, Any] = {
    "connect_timeout_s": {"type": "number", "minimum": 0.05, "maximum": 60},
    "read_timeout_s": {"type": "number", "minimum": 0.05, "maximum": 600},
    "total_timeout_s": {"type": "number", "minimum": 0.05, "maximum": 3600},
    "max_body_bytes": {"type": "integer", "minimum": 0, "maximum": 10 * 1024**3},
    "allow_query_key": {"type": "boolean"},
    "redis_failure_mode": {"enum": [str(m) for m in RedisFailureMode]},
    "allowed_methods": {**_STRINGS, "description": "Methods the gateway forwards; others get 405."},
    "cors_enabled": {"type": "boolean"},
    "cors_allowed_origins": _STRINGS,
    "cors_allowed_methods": _STRINGS,
    "cors_allowed_headers": _STRINGS,
    "cors_exposed_headers": _STRINGS,
    "cors_max_age_s": {"type": "integer", "minimum": 0},
    "cors_allow_credentials": {"type": "boolean"},
    "policies": {
        "$ref": "#/$defs/VersionPolicies",
        "description": "Edge policies: transforms, IP rules, request validation (docs/gateway.md).",
    },
}

VERSION_PROPERTIES: dict[str, Any] = {
    "label": {**_SLUG, "maxLength": 20, "description": "v1, v2, …"},
    "state": {"enum": lifecycle_states(), "description": "Reached through the catalog's allowed transitions."},
    "sunset_at": _DATETIME_OR_NULL,
    "successor": {"type": ["string", "null"], "description": "The label of another version of the same API."},
    "changelog": _TEXT,
    **VERSION_OPTION_PROPERTIES,
    "upstreams": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "weight": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
        },
    },
    "openapi": {"type": ["object", "null"], "description": "The OpenAPI document, inline."},
    "openapi_file": {"type": "string", "description": "Or a path to it (JSON or YAML), relative to this file."},
}


def _limit_schema(*, nullable: bool, minimum: int, maximum: int, help_text: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["integer", "null"] if nullable else "integer", "minimum": minimum}
    schema["maximum"] = maximum
    if help_text:
        schema["description"] = help_text
    return schema


PLAN_LIMIT_PROPERTIES: dict[str, Any] = {
    limit.name: _limit_schema(
        nullable=limit.ceiling, minimum=limit.min_value, maximum=limit.max_value, help_text=limit.help_text
    )
    for limit in LIMITS
}
OVERRIDE_LIMIT_PROPERTIES: dict[str, Any] = {
    limit.name: _limit_schema(nullable=True, minimum=limit.min_value, maximum=limit.max_value, help_text="")
    for limit in LIMITS
}

PLAN_PROPERTIES: dict[str, Any] = {
    "api": {**_SLUG, "description": "The slug of an API in this file or already in the portal."},
    "slug": {**_SLUG, "maxLength": 60},
    "name": {"type": "string", "minLength": 1, "maxLength": 120},
    "description": _TEXT,
    **PLAN_LIMIT_PROPERTIES,
    "monthly_price": _MONEY,
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "included_requests": {"type": "integer", "minimum": 0},
    "overage_price_per_1000": {"anyOf": [_MONEY, {"type": "null"}]},
    "requires_approval": {"type": "boolean"},
    "visibility": {"enum": [str(v) for v in Visibility]},
    "is_active": {"type": "boolean", "description": "Inactive plans take no new subscriptions."},
}

OVERRIDE_PROPERTIES: dict[str, Any] = {
    "subscription": {"type": "integer", "minimum": 1, "description": "The subscription's id."},
    "expires_at": {"type": "string", "format": "date-time"},
    "reason": {"type": "string", "maxLength": 200},
    **OVERRIDE_LIMIT_PROPERTIES,
}


def _object(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties, **extra}


def config_json_schema() -> dict[str, Any]:
    """The schema of a tollway.yaml (JSON Schema draft 2020-12)."""
    version = _object(
        VERSION_PROPERTIES,
        ["label", "upstreams"],
        # Either the document inline or a path to it, not both.
        **{"not": {"required": ["openapi", "openapi_file"]}},
    )
    api = _object({**API_PROPERTIES, "versions": {"type": "array", "items": version}}, ["slug", "name"])
    # The policies' schema is the gateway's own dataclasses, as msgspec describes them.
    _, components = msgspec.json.schema_components([route_policies.VersionPolicies])
    policy_defs = msgspec.json.decode(msgspec.json.encode(components))  # as JSON has it: () defaults become []
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Tollway configuration",
        "description": "APIs, versions, plans and overrides, as `manage.py config dump` writes them.",
        **_object(
            {
                "format_version": {"const": FORMAT_VERSION},
                "apis": {"type": "array", "items": api},
                "plans": {"type": "array", "items": _object(PLAN_PROPERTIES, ["api", "slug", "name"])},
                "overrides": {
                    "type": "array",
                    "items": _object(OVERRIDE_PROPERTIES, ["subscription", "expires_at"]),
                },
            },
            ["format_version"],
        ),
        "$defs": policy_defs,
    }
