from __future__ import annotations

from decimal import Decimal

from django import template

from analytics.billing.rules import money as round_money

register = template.Library()


@register.filter
def money(value: Decimal | None, currency: str) -> str:
    """An amount shown with exactly its currency's minor units (EUR 2, JPY 0, KWD 3)."""
    if value is None:
        return ""
    return str(round_money(Decimal(value), currency))
