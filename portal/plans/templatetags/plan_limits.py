"""The plan table's limit columns, from the one list in portal/plans/limits.py."""

from __future__ import annotations

from django import template

from portal.plans.limits import Limit, limit_columns

register = template.Library()


@register.simple_tag
def plan_limit_columns() -> list[tuple[str, list[Limit]]]:
    return limit_columns()


@register.filter
def limit_of(plan: object, limit: Limit) -> str:
    """``{{ plan|limit_of:limit }}``: the plan's value of that limit as the table shows it."""
    return limit.display(getattr(plan, limit.name))
