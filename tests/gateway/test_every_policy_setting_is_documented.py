"""Each policy is a folder with policy.py (a PRIORITY and its phases) and schema.py; every
setting in a schema has a default and a description."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest

from gateway.pipeline import Pipeline, Policy, describe

POLICIES = sorted(p.name for p in (Path(__file__).parents[2] / "gateway" / "policies").iterdir()
                  if p.is_dir() and not p.name.startswith("_"))


@pytest.mark.parametrize("name", POLICIES)
def test_policy_folder_has_a_policy_and_a_documented_schema(name):
    policy_module = importlib.import_module(f"gateway.policies.{name}.policy")
    schema_module = importlib.import_module(f"gateway.policies.{name}.schema")
    policies = [v for v in vars(policy_module).values()
                if isinstance(v, type) and issubclass(v, Policy) and v is not Policy and name == v.NAME]
    assert len(policies) == 1
    assert isinstance(policies[0].PRIORITY, int)
    schemas = [v for v in vars(schema_module).values()
               if isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == schema_module.__name__]
    assert len(schemas) == 1
    assert schema_module.__doc__  # says, among other things, what happens when Redis is down
    for setting in describe(schemas[0]):
        assert setting["description"], setting
        assert setting["default"] is not None, setting


def test_pipeline_orders_phases_by_priority():
    calls = []

    class First(Policy):
        NAME, PRIORITY = "first", 10

        async def access(self, ctx):
            calls.append("first")

    class Second(Policy):
        NAME, PRIORITY = "second", 5

        async def access(self, ctx):
            calls.append("second")

        def log(self, ctx):
            calls.append("log")

    pipeline = Pipeline([Second(), First()])
    assert [p.NAME for p in pipeline.access_phase] == ["first", "second"]
    assert [p.NAME for p in pipeline.log_phase] == ["second"]
    assert pipeline.response_phase == ()
    import asyncio

    asyncio.run(pipeline.access(None))  # type: ignore[arg-type]
    pipeline.log(None)  # type: ignore[arg-type]
    assert calls == ["first", "second", "log"]
