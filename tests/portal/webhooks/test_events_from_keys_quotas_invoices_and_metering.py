"""The events announced outside the request path: key.expiring from the beat scan (7 days
and 1 day before, each once), quota.threshold_reached with the developer's own thresholds,
invoice.issued when a month is closed, and metering.lag_exceeded for operators."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from analytics.billing import services as billing
from analytics.quotas import services as quotas
from portal.keys import services as keys
from portal.plans import services as plans
from portal.webhooks import services as webhooks
from portal.webhooks.models import WebhookEvent
from tests.analytics.test_quota_alerts_email_once import _meter
from tests.portal.webhooks.conftest import deliver_pending, verified

pytestmark = pytest.mark.django_db


def _payloads(listener, secret):
    return [verified(secret, r) for r in listener.received]


def test_key_expiring_is_sent_seven_days_and_one_day_before(listener, alice, acme, alice_app):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.expiring"], actor=alice
    )
    now = timezone.now()
    key = keys.api_key_issue(application=alice_app, expires_at=now + dt.timedelta(days=6, hours=12), actor=alice).key
    keys.api_key_issue(application=alice_app, expires_at=now + dt.timedelta(days=30), actor=alice)  # not yet

    assert webhooks.webhook_key_expiry_scan(now=now) == 1
    assert webhooks.webhook_key_expiry_scan(now=now + dt.timedelta(hours=1)) == 0  # once per threshold
    assert webhooks.webhook_key_expiry_scan(now=now + dt.timedelta(days=5, hours=13)) == 1  # within a day
    assert webhooks.webhook_key_expiry_scan(now=now + dt.timedelta(days=6)) == 0
    deliver_pending()

    payloads = _payloads(listener, created.secret)
    assert [(p["data"]["key"]["prefix"], p["data"]["expires_in_days"]) for p in payloads] == [
        (key.prefix, 7),
        (key.prefix, 1),
    ]


def test_quota_threshold_reached_follows_the_developers_thresholds(listener, alice, acme, alice_app, free_plan):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["quota.threshold_reached"], actor=alice
    )
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)  # 1,000 a day
    quotas.quota_alert_set(application=alice_app, user=alice, percentages=[50, 90])
    _meter(subscription, 600)
    quotas.quota_alert_check(application_id=alice_app.pk)
    quotas.quota_alert_check(application_id=alice_app.pk)  # a retried check sends nothing twice
    deliver_pending()

    [payload] = _payloads(listener, created.secret)
    assert payload["type"] == "quota.threshold_reached"
    assert payload["data"]["threshold_percent"] == 50
    assert payload["data"]["quota"]["used"] == 600
    assert payload["data"]["quota"]["limit"] == 1000
    assert payload["data"]["subscription"]["id"] == subscription.pk


def test_invoice_issued_when_the_month_closes(listener, alice, olivia, acme, alice_app, pro_plan):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["invoice.issued"], actor=alice
    )
    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)
    plans.subscription_approve(subscription=subscription, actor=olivia)

    invoices = billing.billing_period_close(month=timezone.now().date())
    deliver_pending()

    assert invoices
    payloads = _payloads(listener, created.secret)
    assert [p["data"]["invoice"]["number"] for p in payloads] == [i.number for i in invoices]
    assert payloads[0]["data"]["invoice"]["total"] == str(invoices[0].total)


def test_metering_lag_goes_to_operators_only(listener, olivia, alice, acme):
    ops = webhooks.webhook_endpoint_create(
        organization=None, url=listener.url("/ops"), event_types=["metering.lag_exceeded"], actor=olivia
    )
    webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url("/acme"), event_types=["key.revoked"], actor=alice
    )

    event = webhooks.webhook_event_emit(
        event_type="metering.lag_exceeded", lag_seconds=42.5, threshold_seconds=30, stream="tollway:v1:metering"
    )
    deliver_pending()

    assert event.organization_id is None
    [received] = listener.received
    assert received.path == "/ops"
    assert verified(ops.secret, received)["data"] == {
        "lag_seconds": 42.5,
        "threshold_seconds": 30,
        "stream": "tollway:v1:metering",
    }


def test_an_organization_cannot_subscribe_to_operators_events(alice, acme):
    from portal.core.errors import ApplicationError

    with pytest.raises(ApplicationError, match=r"metering\.lag_exceeded"):
        webhooks.webhook_endpoint_create(
            organization=acme, url="https://hooks.example.com/", event_types=["metering.lag_exceeded"], actor=alice
        )
    assert not WebhookEvent.objects.filter(event_type="metering.lag_exceeded").exists()
