"""Billing reads: invoices a user may see, billable usage, revenue."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet, Sum

from analytics.billing import rules
from analytics.models import CreditNote, Granularity, Invoice, InvoiceLine, Rollup
from portal.accounts.selectors import is_finance, organization_ids_for
from portal.catalog.selectors import api_names
from portal.plans.selectors import plan_names

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from portal.accounts.models import User


def invoices_for(user: User | AnonymousUser) -> QuerySet[Invoice]:
    """Finance and operators see every invoice; members their organizations' ones."""
    if not getattr(user, "is_authenticated", False):
        return Invoice.objects.none()
    qs = Invoice.objects.select_related("organization")
    if is_finance(user):
        return qs
    return qs.filter(organization_id__in=organization_ids_for(user))


def billable_usage(*, subscription_ids: list[int], month: date) -> dict[tuple[int, int], dict[str, int]]:
    """(subscription_id, plan_id) -> ISO day -> admitted requests, from day rollups."""
    if not subscription_ids:
        return {}
    m_start, m_end = rules.month_bounds(month)
    rows = (
        Rollup.objects.filter(
            granularity=Granularity.DAY, subscription_id__in=subscription_ids, bucket__gte=m_start, bucket__lt=m_end
        )
        .values("subscription_id", "plan_id", "bucket")
        .annotate(n=Sum("admitted"))
    )
    out: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for r in rows:
        if r["n"]:
            out[(r["subscription_id"], r["plan_id"])][r["bucket"].date().isoformat()] = int(r["n"])
    return out


def revenue_report(*, month: date) -> dict[str, list[dict[str, Any]]]:
    """Revenue of ``month``'s invoices (draft or final) by API, plan and organization."""
    lines = InvoiceLine.objects.filter(invoice__month=month)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, field, names in (("api", "api_id", api_names()), ("plan", "plan_id", plan_names())):
        rows = lines.values(field, "invoice__currency").annotate(amount=Sum("amount"), requests=Sum("used_requests"))
        out[key] = sorted(
            (
                {"label": names.get(r[field], f"#{r[field]}"), "currency": r["invoice__currency"],
                 "amount": rules.money(Decimal(r["amount"] or 0), r["invoice__currency"]),
                 "requests": int(r["requests"] or 0)}
                for r in rows
            ),
            key=lambda r: (-r["amount"], r["label"]),
        )
    rows = lines.values("invoice__organization__name", "invoice__currency", "invoice__status").annotate(
        amount=Sum("amount"), requests=Sum("used_requests")
    )
    out["organization"] = sorted(
        (
            {"label": r["invoice__organization__name"], "currency": r["invoice__currency"],
             "status": r["invoice__status"], "amount": rules.money(Decimal(r["amount"] or 0), r["invoice__currency"]),
             "requests": int(r["requests"] or 0)}
            for r in rows
        ),
        key=lambda r: (-r["amount"], r["label"]),
    )
    return out


def credit_notes_of(invoice: Invoice) -> QuerySet[CreditNote]:
    return invoice.credit_notes.select_related("issued_by").order_by("issued_at", "pk")
