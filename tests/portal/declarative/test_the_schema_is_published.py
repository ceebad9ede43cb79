"""The JSON Schema is generated from the services' field lists and published as docs/tollway-config.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

from portal.catalog.services import API_FIELDS, VERSION_FIELDS
from portal.declarative.schema import API_PROPERTIES, PLAN_PROPERTIES, VERSION_PROPERTIES, config_json_schema
from portal.plans.limits import LIMIT_FIELDS
from portal.plans.services import OVERRIDE_FIELDS, PLAN_FIELDS

DOC = Path(__file__).resolve().parents[3] / "docs" / "tollway-config.schema.json"


def test_the_committed_schema_is_the_generated_one():
    # Regenerate: python -c "…config_json_schema()…" (see docs/configuration-as-code.md).
    assert json.loads(DOC.read_text()) == config_json_schema()


def test_it_covers_every_field_the_services_write():
    assert set(API_FIELDS) == set(API_PROPERTIES)
    # deprecated_at is set by the lifecycle; successor_id is named by label as "successor".
    assert set(VERSION_FIELDS) - {"deprecated_at", "successor_id"} | {"successor"} <= set(VERSION_PROPERTIES)
    assert set(PLAN_FIELDS) | {"api"} == set(PLAN_PROPERTIES)
    override = config_json_schema()["properties"]["overrides"]["items"]["properties"]
    assert set(OVERRIDE_FIELDS) | {"subscription", "reason"} == set(override)
    assert set(LIMIT_FIELDS) <= set(PLAN_PROPERTIES)
