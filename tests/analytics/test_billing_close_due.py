"""Beat closes a month once its grace has passed, and only then."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from analytics.billing import services
from analytics.models import BillingPeriod, Invoice, InvoiceStatus
from portal.plans.models import PlanChange, Subscription, SubscriptionStatus

pytestmark = pytest.mark.django_db


def test_it_closes_last_month_after_the_grace(acme, alice_app, pro_plan):
    sub = Subscription.objects.create(application=alice_app, plan=pro_plan, api_id=pro_plan.api_id,
                                      status=SubscriptionStatus.ACTIVE)
    since = datetime(2026, 9, 1, tzinfo=UTC)
    Subscription.objects.filter(pk=sub.pk).update(created_at=since)
    PlanChange.objects.create(subscription=sub, to_plan=pro_plan, changed_at=since)

    assert services.billing_close_due(now=datetime(2026, 11, 1, 0, 30, tzinfo=UTC)) == [date(2026, 9, 1)]
    assert not BillingPeriod.objects.filter(month=date(2026, 10, 1), closed_at__isnull=False).exists()
    closed = services.billing_close_due(now=datetime(2026, 11, 1, 1, 30, tzinfo=UTC))
    assert closed == [date(2026, 10, 1)]
    invoice = Invoice.objects.get(month=date(2026, 10, 1))
    assert invoice.status == InvoiceStatus.FINAL
    assert invoice.number == "TW-2026-000002"  # September, closed first, took 000001
    assert services.billing_close_due(now=datetime(2026, 11, 1, 2, 30, tzinfo=UTC)) == []
