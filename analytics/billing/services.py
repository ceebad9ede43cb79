"""Billing writes: draft invoices recomputed from the rollups, months closed for good,
issued invoices paid or voided, corrections by credit note.

Keyword-only; ``invoice_refresh`` and ``billing_period_close`` run in one
transaction each. ``billing_close_due`` closes each due month in its own
transaction, so one month's failure does not undo another's close. The
arithmetic is in rules.py; plan history comes from ``portal.plans.selectors``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from analytics import conf
from analytics.billing import rules
from analytics.billing.selectors import billable_usage
from analytics.models import (
    ISSUED_STATES,
    BillingPeriod,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceNumberCounter,
    InvoiceStatus,
    UsageAdjustment,
)
from portal.accounts.selectors import organization_ids
from portal.audit.services import audit_record
from portal.core.changes import announce_event
from portal.core.errors import ApplicationError, InvalidTransition
from portal.plans.selectors import PlanSpan, plan_get, subscription_plan_spans, subscriptions_of_organization

if TYPE_CHECKING:
    from portal.accounts.models import User
    from portal.plans.models import Plan

INVOICE_NUMBER_PREFIX = "TW"


def _terms(plan: Plan) -> rules.PlanTerms:
    return rules.PlanTerms(
        plan_id=plan.pk,
        currency=plan.currency,
        monthly_price=plan.monthly_price,
        included_requests=plan.included_requests,
        overage_price_per_1000=plan.overage_price_per_1000,
    )


def _statement_lines(organization_id: int, month: date) -> dict[str, list[InvoiceLine]]:
    """Unsaved invoice lines per currency for one organization's month."""
    m_start, m_end = rules.month_bounds(month)
    spans = subscription_plan_spans(organization_id=organization_id, start=m_start, end=m_end)
    usage = billable_usage(subscription_ids=list({s.subscription.pk for s in spans}), month=month)
    # Usage the gateway could not attribute to a plan goes to the plan in force last.
    last_plan: dict[int, int] = {}
    for span in spans:
        last_plan[span.subscription.pk] = span.plan.pk
    merged: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (sub_id, plan_id), days in usage.items():
        target = plan_id or last_plan.get(sub_id, 0)
        for day, n in days.items():
            merged[(sub_id, target)][day] += n

    grouped: dict[tuple[int, int], list[PlanSpan]] = defaultdict(list)
    for span in spans:
        grouped[(span.subscription.pk, span.plan.pk)].append(span)
    lines: dict[str, list[InvoiceLine]] = defaultdict(list)
    for (sub_id, plan_id), plan_spans in grouped.items():
        plan = plan_spans[0].plan
        sub = plan_spans[0].subscription
        fraction = sum((rules.span_fraction(s.start, s.end, month) for s in plan_spans), Decimal(0))
        fraction = min(fraction, Decimal(1))
        daily = dict(sorted(merged.get((sub_id, plan_id), {}).items()))
        amounts = rules.price_line(terms=_terms(plan), fraction=fraction, used_requests=sum(daily.values()))
        start = max(min(s.start for s in plan_spans), m_start)
        end = min(max(s.end for s in plan_spans), m_end)
        lines[plan.currency].append(
            InvoiceLine(
                kind="usage",
                subscription_id=sub_id,
                application_id=sub.application_id,
                api_id=sub.api_id,
                plan_id=plan_id,
                description=f"{sub.api.name} · {plan.name} · {sub.application.name}",
                period_start=start,
                period_end=end,
                fraction=fraction.quantize(Decimal("0.000001")),
                base_fee=amounts.base_fee,
                included_requests=amounts.included_requests,
                used_requests=amounts.used_requests,
                overage_requests=amounts.overage_requests,
                overage_fee=amounts.overage_fee,
                amount=amounts.amount,
                daily_usage=daily,
            )
        )
    for line in _adjustment_lines(organization_id, month):
        lines[line.currency].append(line.line)
    return lines


@dataclass
class _AdjustmentLine:
    currency: str
    line: InvoiceLine
    adjustment_ids: list[int]


def _adjustment_lines(organization_id: int, month: date) -> list[_AdjustmentLine]:
    """Late usage of closed months, carried by this month's invoice: every
    adjustment not yet attached to a final invoice, created before this month ends."""
    _, m_end = rules.month_bounds(month)
    subs = subscriptions_of_organization(organization_id=organization_id)
    pending = UsageAdjustment.objects.filter(
        subscription_id__in=list(subs), invoice__isnull=True, created_at__lt=m_end, usage_month__lt=month
    ).order_by("id")
    grouped: dict[tuple[int, int, date], list[UsageAdjustment]] = defaultdict(list)
    for adj in pending:
        grouped[(adj.subscription_id, adj.plan_id, adj.usage_month)].append(adj)
    out: list[_AdjustmentLine] = []
    for (sub_id, plan_id, usage_month), adjs in grouped.items():
        sub = subs[sub_id]
        original = (
            InvoiceLine.objects.filter(
                invoice__month=usage_month, invoice__status__in=ISSUED_STATES, subscription_id=sub_id,
                kind="usage", plan_id=plan_id or sub.plan_id,
            ).first()
        )
        plan = plan_get(plan_id=original.plan_id if original else (plan_id or sub.plan_id))
        already = (
            UsageAdjustment.objects.filter(
                subscription_id=sub_id, plan_id=plan_id, usage_month=usage_month, invoice__isnull=False
            ).aggregate(n=Sum("requests"))["n"]
            or 0
        )
        late = sum(a.requests for a in adjs)
        amounts = rules.price_adjustment(
            terms=_terms(plan),
            included=original.included_requests if original else 0,
            billed_used=(original.used_requests if original else 0) + already,
            late_requests=late,
        )
        m_start, m_stop = rules.month_bounds(usage_month)
        out.append(
            _AdjustmentLine(
                currency=plan.currency,
                adjustment_ids=[a.pk for a in adjs],
                line=InvoiceLine(
                    kind="adjustment",
                    subscription_id=sub_id,
                    application_id=sub.application_id,
                    api_id=sub.api_id,
                    plan_id=plan.pk,
                    description=f"Late usage for {usage_month:%Y-%m}: {sub.api.name} · {plan.name}",
                    period_start=m_start,
                    period_end=m_stop,
                    fraction=Decimal(0),
                    base_fee=amounts.base_fee,
                    included_requests=0,
                    used_requests=late,
                    overage_requests=amounts.overage_requests,
                    overage_fee=amounts.overage_fee,
                    amount=amounts.amount,
                    daily_usage={},
                ),
            )
        )
    return out


def _write_invoice(organization_id: int, month: date, currency: str, lines: list[InvoiceLine]) -> Invoice:
    invoice, _ = Invoice.objects.select_for_update().get_or_create(
        organization_id=organization_id, month=month, currency=currency
    )
    if invoice.status != InvoiceStatus.DRAFT:
        return invoice
    invoice.lines.all().delete()
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    invoice.total = rules.invoice_total([ln.amount for ln in lines], currency)
    invoice.save()
    return invoice


@transaction.atomic
def invoice_refresh(*, organization_id: int, month: date) -> list[Invoice]:
    """Recompute the organization's draft invoices for ``month`` from the rollups.
    Final invoices are never touched."""
    period = BillingPeriod.objects.filter(month=month).first()
    if period and period.closed_at:
        return list(Invoice.objects.filter(organization_id=organization_id, month=month))
    lines = _statement_lines(organization_id, month)
    invoices = [_write_invoice(organization_id, month, cur, ls) for cur, ls in sorted(lines.items())]
    # A currency that no longer has lines (e.g. a cancelled subscription) loses its draft.
    Invoice.objects.filter(organization_id=organization_id, month=month, status=InvoiceStatus.DRAFT).exclude(
        currency__in=list(lines)
    ).delete()
    return invoices


@transaction.atomic
def billing_period_close(*, month: date, now: datetime | None = None) -> list[Invoice]:
    """Finalise every organization's invoices for ``month``. Idempotent: a second
    run finds the period closed and returns the same invoices unchanged."""
    now = now or timezone.now()
    month = rules.month_start(month)
    BillingPeriod.objects.get_or_create(month=month)
    # Exclusive row lock: waits for metering batches holding the shared lock on this
    # month, and makes later batches see the month closed (-> adjustment path).
    period = BillingPeriod.objects.select_for_update().get(month=month)
    if period.closed_at:
        return list(Invoice.objects.filter(month=month).order_by("organization_id", "currency"))
    finals: list[Invoice] = []
    for org_id in organization_ids():
        lines = _statement_lines(org_id, month)
        adjustments = _adjustment_lines(org_id, month)
        for currency, cur_lines in sorted(lines.items()):
            invoice = _write_invoice(org_id, month, currency, cur_lines)
            invoice.status = InvoiceStatus.FINAL
            invoice.finalized_at = now
            invoice.number = invoice_number_next(year=now.year)
            invoice.save()
            announce_event("invoice.issued", invoice)
            finals.append(invoice)
        # Mark the carried adjustments with the invoice that billed them.
        for adj in adjustments:
            inv = next((i for i in finals if i.organization_id == org_id and i.currency == adj.currency), None)
            if inv is not None:
                UsageAdjustment.objects.filter(pk__in=adj.adjustment_ids).update(invoice=inv)
        Invoice.objects.filter(organization_id=org_id, month=month, status=InvoiceStatus.DRAFT).delete()
    period.closed_at = now
    period.save()
    return finals


def billing_close_due(*, now: datetime | None = None) -> list[date]:
    """Close every month that ended more than CLOSE_GRACE_S ago and is still open."""
    now = now or timezone.now()
    previous = rules.month_start(now - timedelta(seconds=conf.CLOSE_GRACE_S))
    candidates = set(
        BillingPeriod.objects.filter(closed_at__isnull=True, month__lt=previous).values_list("month", flat=True)
    )
    prev_month = rules.month_start(rules.month_bounds(previous)[0] - timedelta(days=1))
    if not BillingPeriod.objects.filter(month=prev_month).exists():
        candidates.add(prev_month)
    closed = []
    for month in sorted(candidates):
        billing_period_close(month=month, now=now)
        closed.append(month)
    return closed


def invoice_number_next(*, year: int) -> str:
    """The next number of ``year``'s sequence, e.g. TW-2026-000001. Call it inside the
    transaction that issues the document: the counter row stays locked until that
    transaction ends, so a rollback returns the number and the sequence has no gaps."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice_number_next must run inside the issuing transaction")
    # get_or_create survives two first issuers of a year racing on the unique year.
    InvoiceNumberCounter.objects.get_or_create(year=year)
    counter = InvoiceNumberCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"{INVOICE_NUMBER_PREFIX}-{year}-{counter.last:06d}"


def _invoice_locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


def credit_total(invoice: Invoice) -> Decimal:
    """What the invoice's credit notes have taken off so far (a positive amount)."""
    return -sum((c.amount for c in invoice.credit_notes.all()), Decimal(0))


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: User) -> Invoice:
    invoice = _invoice_locked(invoice)
    if invoice.status != InvoiceStatus.FINAL:
        state = invoice.get_status_display().lower()
        raise InvalidTransition(f"Only an issued invoice can be marked paid; this one is {state}.")
    invoice.status = InvoiceStatus.PAID
    invoice.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action="invoice.paid", obj=invoice, before={"status": "final"},
                 after={"status": "paid"}, organization_id=invoice.organization_id)
    return invoice


@transaction.atomic
def credit_note_issue(
    *, invoice: Invoice, actor: User, amount: Decimal, reason: str, now: datetime | None = None
) -> CreditNote:
    """Correct an issued (or paid) invoice by ``amount`` (positive, in its currency): a
    credit note of -amount, numbered in the invoices' sequence. The invoice is unchanged."""
    now = now or timezone.now()
    invoice = _invoice_locked(invoice)
    if invoice.status not in (InvoiceStatus.FINAL, InvoiceStatus.PAID):
        raise InvalidTransition("Only an issued or paid invoice can be corrected by a credit note.")
    reason = reason.strip()
    if not reason:
        raise ApplicationError("Say why.", fields={"reason": ["Say why the invoice is corrected."]})
    rounded = rules.money(amount, invoice.currency)
    if rounded != amount or amount <= 0:
        raise ApplicationError(
            "Give a positive amount in the currency's minor unit.",
            fields={"amount": [f"A positive amount with at most {rules.minor_units(invoice.currency)} decimals."]},
        )
    left = invoice.total - credit_total(invoice)
    if amount > left:
        raise ApplicationError(
            "A credit note cannot take off more than the invoice has left.",
            fields={"amount": [f"At most {rules.money(left, invoice.currency)} {invoice.currency}."]},
        )
    note = CreditNote.objects.create(
        invoice=invoice, number=invoice_number_next(year=now.year), currency=invoice.currency,
        amount=-rounded, reason=reason[:200], issued_at=now, issued_by=actor,
    )
    audit_record(actor=actor, action="credit_note.issued", obj=note, after={
        "invoice": invoice.number, "number": note.number, "amount": str(note.amount), "reason": note.reason,
    }, organization_id=invoice.organization_id)
    return note


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor: User, reason: str, now: datetime | None = None) -> CreditNote | None:
    """Cancel an issued, unpaid invoice: a credit note for what it has left (none when
    nothing is left), then void. Its number stays taken: the sequence has no gaps."""
    invoice = _invoice_locked(invoice)
    if invoice.status != InvoiceStatus.FINAL:
        state = invoice.get_status_display().lower()
        raise InvalidTransition(f"Only an issued, unpaid invoice can be voided; this one is {state}.")
    if not reason.strip():
        raise ApplicationError("Say why.", fields={"reason": ["Say why the invoice is voided."]})
    left = invoice.total - credit_total(invoice)
    note = credit_note_issue(invoice=invoice, actor=actor, amount=left, reason=reason, now=now) if left > 0 else None
    invoice.status = InvoiceStatus.VOID
    invoice.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action="invoice.void", obj=invoice, before={"status": "final"},
                 after={"status": "void", "credit_note": note.number if note else ""},
                 organization_id=invoice.organization_id)
    return note
