"""portal/plans/limits.py spells the limit columns out once more, under TYPE_CHECKING, for mypy
(it cannot read the type()-built abstract models). That copy must name exactly LIMITS, with
the same column types and nullability, or the type checker would believe in other columns."""

from __future__ import annotations

import ast
import inspect

from portal.plans import limits


def _declared(class_name: str) -> dict[str, tuple[str, bool]]:
    tree = ast.parse(inspect.getsource(limits))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            fields = {}
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
                    call = stmt.value
                    assert isinstance(call.func, ast.Attribute)
                    null = any(k.arg == "null" and getattr(k.value, "value", False) is True for k in call.keywords)
                    fields[stmt.targets[0].id] = (call.func.attr, null)  # type: ignore[attr-defined]
            return fields
    raise AssertionError(f"no class {class_name} in portal/plans/limits.py")


def _column(limit: limits.Limit) -> str:
    return "PositiveBigIntegerField" if limit.big else "PositiveIntegerField"


def test_the_typed_plan_limits_name_the_limits_with_their_column_types():
    assert _declared("PlanLimits") == {limit.name: (_column(limit), limit.ceiling) for limit in limits.LIMITS}


def test_the_typed_override_limits_name_the_limits_all_nullable():
    assert _declared("OverrideLimits") == {limit.name: (_column(limit), True) for limit in limits.LIMITS}
