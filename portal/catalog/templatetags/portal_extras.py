"""Template filters for the portal pages."""

from __future__ import annotations

from decimal import Decimal

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]


@register.filter
def markdown(text: str | None) -> SafeString:
    """Render API owners' Markdown; nh3 strips scripts, event handlers and unsafe URLs."""
    html = markdown_lib.markdown(text or "", extensions=MARKDOWN_EXTENSIONS, output_format="html")
    return mark_safe(nh3.clean(html))  # noqa: S308  # sanitised by nh3 on the line above


@register.filter
def limit(value: int | None) -> str:
    """A plan limit: None means unlimited in that dimension."""
    return "Unlimited" if value is None else f"{value:,}"


@register.filter
def price(value: Decimal | None, currency: str = "") -> str:
    if value is None:
        return "—"
    if value == 0:
        return "Free"
    # Overage prices carry four decimals (0.0025 per 1,000); keep them, trim the rest.
    shown = f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():,f}"
    return f"{shown} {currency}".strip()
