"""Statements from rollups: live drafts, proration from the plan history, closing
twice gives the same invoices, late usage goes to an adjustment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.billing import services as billing
from analytics.models import BillingPeriod, Invoice, InvoiceStatus, UsageAdjustment
from portal.plans.models import PlanChange, Subscription, SubscriptionStatus
from tests.analytics.conftest import commit_requests, make_request

OCT = date(2026, 10, 1)
NOV = date(2026, 11, 1)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _subscribe(app, plan, since: datetime) -> Subscription:
    sub = Subscription.objects.create(application=app, plan=plan, api_id=plan.api_id, status=SubscriptionStatus.ACTIVE)
    Subscription.objects.filter(pk=sub.pk).update(created_at=since, approved_at=since)
    PlanChange.objects.create(subscription=sub, from_plan=None, to_plan=plan, changed_at=since)
    sub.refresh_from_db()
    return sub


def _meter(sub, plan, n: int, at: datetime, *, now: datetime, decision: str = "allowed") -> None:
    events = [
        make_request(ts=_ms(at) + i, application_id=sub.application_id, subscription_id=sub.pk, plan_id=plan.pk,
                   api_id=sub.api_id, decision=decision)
        for i in range(n)
    ]
    commit_requests(events, consumer="test", now_ms=_ms(now))


@pytest.mark.django_db
def test_the_draft_shows_exactly_the_metered_requests(acme, alice_app, pro_plan):
    sub = _subscribe(alice_app, pro_plan, datetime(2026, 9, 1, tzinfo=UTC))
    _meter(sub, pro_plan, 1234, datetime(2026, 10, 5, 10, tzinfo=UTC), now=datetime(2026, 10, 6, tzinfo=UTC))
    _meter(sub, pro_plan, 5, datetime(2026, 10, 5, 11, tzinfo=UTC), now=datetime(2026, 10, 6, tzinfo=UTC),
           decision="rate_limited")  # turned away: not billed
    [invoice] = billing.invoice_refresh(organization_id=acme.pk, month=OCT)
    [line] = invoice.lines.all()
    assert invoice.status == InvoiceStatus.DRAFT
    assert line.used_requests == 1234
    assert line.daily_usage == {"2026-10-05": 1234}
    assert line.amount == Decimal("49.000")
    assert invoice.total == Decimal("49.000")


@pytest.mark.django_db
def test_a_mid_month_plan_change_splits_the_month(acme, alice_app, free_plan, pro_plan):
    free_plan.monthly_price = Decimal("10.00")
    free_plan.included_requests = 1000
    free_plan.overage_price_per_1000 = Decimal("1.00")
    free_plan.save()
    sub = _subscribe(alice_app, free_plan, datetime(2026, 9, 1, tzinfo=UTC))
    change = datetime(2026, 11, 16, tzinfo=UTC)  # November has 30 days: half and half
    PlanChange.objects.create(subscription=sub, from_plan=free_plan, to_plan=pro_plan, changed_at=change)
    Subscription.objects.filter(pk=sub.pk).update(plan=pro_plan)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    _meter(sub, free_plan, 1500, datetime(2026, 11, 10, tzinfo=UTC), now=now)
    _meter(sub, pro_plan, 700, datetime(2026, 11, 17, tzinfo=UTC), now=now)

    [invoice] = billing.invoice_refresh(organization_id=acme.pk, month=NOV)
    lines = {ln.plan_id: ln for ln in invoice.lines.all()}
    free_line, pro_line = lines[free_plan.pk], lines[pro_plan.pk]
    assert free_line.fraction == Decimal("0.5")
    assert (free_line.base_fee, free_line.included_requests, free_line.used_requests) == (Decimal("5.00"), 500, 1500)
    assert (free_line.overage_requests, free_line.overage_fee) == (1000, Decimal("1.00"))
    assert (pro_line.base_fee, pro_line.included_requests, pro_line.used_requests) == (Decimal("24.50"), 50_000, 700)
    assert pro_line.overage_fee == 0
    assert invoice.total == Decimal("30.50")


@pytest.mark.django_db
def test_closing_a_month_twice_gives_the_same_invoices(acme, alice_app, pro_plan):
    sub = _subscribe(alice_app, pro_plan, datetime(2026, 9, 1, tzinfo=UTC))
    _meter(sub, pro_plan, 300, datetime(2026, 10, 30, tzinfo=UTC), now=datetime(2026, 10, 31, tzinfo=UTC))

    first = billing.billing_period_close(month=OCT, now=datetime(2026, 11, 1, 2, tzinfo=UTC))
    snapshot = [(i.pk, i.number, i.status, i.total, i.finalized_at) for i in first]
    lines = sorted(Invoice.objects.get(pk=first[0].pk).lines.values_list("pk", "amount", "used_requests"))
    second = billing.billing_period_close(month=OCT, now=datetime(2026, 11, 1, 3, tzinfo=UTC))
    assert [(i.pk, i.number, i.status, i.total, i.finalized_at) for i in second] == snapshot
    assert sorted(Invoice.objects.get(pk=first[0].pk).lines.values_list("pk", "amount", "used_requests")) == lines
    assert first[0].status == InvoiceStatus.FINAL
    assert Invoice.objects.filter(month=OCT).count() == 1
    # A refresh after the close leaves the final invoice alone.
    billing.invoice_refresh(organization_id=acme.pk, month=OCT)
    assert sorted(Invoice.objects.get(pk=first[0].pk).lines.values_list("pk", "amount", "used_requests")) == lines


@pytest.mark.django_db
def test_late_usage_of_a_closed_month_becomes_an_adjustment(acme, alice_app, pro_plan):
    pro_plan.included_requests = 100
    pro_plan.save()
    sub = _subscribe(alice_app, pro_plan, datetime(2026, 9, 1, tzinfo=UTC))
    _meter(sub, pro_plan, 90, datetime(2026, 10, 31, 23, 59, tzinfo=UTC), now=datetime(2026, 11, 1, tzinfo=UTC))
    [closed] = billing.billing_period_close(month=OCT, now=datetime(2026, 11, 1, 2, tzinfo=UTC))
    assert closed.total == Decimal("49.000")

    # 30 more October requests arrive after the close (a gateway that was cut off, say).
    _meter(sub, pro_plan, 30, datetime(2026, 10, 31, 23, 58, tzinfo=UTC), now=datetime(2026, 11, 2, tzinfo=UTC))
    closed.refresh_from_db()
    assert closed.total == Decimal("49.000")
    assert closed.lines.get().used_requests == 90
    [adj] = UsageAdjustment.objects.all()
    assert (adj.usage_month, adj.requests, adj.invoice_id) == (OCT, 30, None)

    [draft] = billing.invoice_refresh(organization_id=acme.pk, month=NOV)
    late = draft.lines.get(kind="adjustment")
    assert late.used_requests == 30
    assert late.overage_requests == 20  # 90 + 30 against 100 included
    assert late.amount == Decimal("0.01")  # 20 x 0.0005
    assert BillingPeriod.objects.get(month=OCT).closed_at is not None


@pytest.mark.django_db
def test_beat_keeps_the_current_draft_live(acme, alice_app, pro_plan):
    from django.utils import timezone

    from analytics.billing.rules import month_start
    from analytics.billing.tasks import invoices_refresh_dispatch
    from portal.celery import app

    sub = _subscribe(alice_app, pro_plan, datetime(2026, 9, 1, tzinfo=UTC))
    now = timezone.now()
    _meter(sub, pro_plan, 42, now.replace(minute=0, second=0, microsecond=0), now=now)
    app.conf.task_always_eager = True
    try:
        assert invoices_refresh_dispatch.apply().get() == 1
    finally:
        app.conf.task_always_eager = False
    invoice = Invoice.objects.get(organization=acme, month=month_start(now))
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.lines.get().used_requests == 42
