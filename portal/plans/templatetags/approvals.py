"""{% approvals_pending_count %}: the operators' inbox count, for the admin index."""

from __future__ import annotations

from django import template

from portal.plans.selectors import approvals_pending_count as _count

register = template.Library()


@register.simple_tag
def approvals_pending_count() -> int:
    return _count()
