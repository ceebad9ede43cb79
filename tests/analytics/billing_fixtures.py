"""Issued invoices for the lifecycle, PDF and finance tests: October 2026 closed on
1 November, Acme on Pro (49.00 + 0.50 per 1,000 beyond 100 included)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from analytics.billing import services as billing
from analytics.models import Invoice
from portal.plans.models import PlanChange, Subscription, SubscriptionStatus
from tests.analytics.conftest import commit_requests, make_request

OCT = date(2026, 10, 1)
CLOSED_AT = datetime(2026, 11, 1, 2, tzinfo=UTC)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def subscribe(app: Any, plan: Any, since: datetime = datetime(2026, 9, 1, tzinfo=UTC)) -> Subscription:
    sub = Subscription.objects.create(application=app, plan=plan, api_id=plan.api_id, status=SubscriptionStatus.ACTIVE)
    Subscription.objects.filter(pk=sub.pk).update(created_at=since, approved_at=since)
    PlanChange.objects.create(subscription=sub, from_plan=None, to_plan=plan, changed_at=since)
    sub.refresh_from_db()
    return sub


def meter(sub: Subscription, n: int, at: datetime = datetime(2026, 10, 5, 10, tzinfo=UTC)) -> None:
    requests = [
        make_request(ts=_ms(at) + i, application_id=sub.application_id, subscription_id=sub.pk, plan_id=sub.plan_id,
                     api_id=sub.api_id)
        for i in range(n)
    ]
    commit_requests(requests, consumer="test", now_ms=_ms(datetime(2026, 10, 6, tzinfo=UTC)))


def cheap_pro(pro_plan: Any) -> Any:
    pro_plan.included_requests = 100
    pro_plan.save()
    return pro_plan


def issued_october(app: Any, pro_plan: Any, requests: int = 345) -> Invoice:
    """345 requests: 245 beyond the 100 included, 0.1225 -> 0.12; total 49.12."""
    sub = subscribe(app, cheap_pro(pro_plan))
    meter(sub, requests)
    billing.billing_period_close(month=OCT, now=CLOSED_AT)
    return Invoice.objects.get(organization_id=app.organization_id, month=OCT)


EXPECTED_TOTAL = Decimal("49.12")
