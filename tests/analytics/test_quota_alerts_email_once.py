"""Developers choose quota percentages; each threshold emails once per window."""

from __future__ import annotations

import time

import pytest
from django.core import mail

from analytics.models import QuotaAlert, QuotaAlertSent
from analytics.quotas import services as quotas
from analytics.quotas.tasks import quota_alerts_dispatch
from portal.core.errors import ApplicationError
from portal.plans.models import Subscription, SubscriptionStatus
from tests.analytics.conftest import commit_requests, make_request

pytestmark = pytest.mark.django_db


def _meter(sub, n):
    now = int(time.time() * 1000)
    events = [make_request(ts=now - 1000, application_id=sub.application_id, subscription_id=sub.pk,
                         plan_id=sub.plan_id, api_id=sub.api_id) for _ in range(n)]
    commit_requests(events, consumer="test")


@pytest.fixture
def subscription(alice_app, free_plan):  # free: 1,000 requests a day
    return Subscription.objects.create(application=alice_app, plan=free_plan, api_id=free_plan.api_id,
                                       status=SubscriptionStatus.ACTIVE)


def test_it_emails_each_threshold_once(alice, alice_app, subscription):
    quotas.quota_alert_set(application=alice_app, user=alice, percentages=[100, 80, 80])
    _meter(subscription, 799)
    assert quotas.quota_alert_check(application_id=alice_app.pk) == []
    _meter(subscription, 1)
    [(sub_id, window, pct)] = quotas.quota_alert_check(application_id=alice_app.pk)
    assert (sub_id, pct) == (subscription.pk, 80)
    assert window.startswith("d")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@acme.test"]
    assert "80%" in mail.outbox[0].subject
    assert "800 of 1,000" in mail.outbox[0].body

    # A retried task sends nothing twice.
    assert quotas.quota_alert_check(application_id=alice_app.pk) == []
    _meter(subscription, 200)
    assert [p for *_, p in quotas.quota_alert_check(application_id=alice_app.pk)] == [100]
    assert len(mail.outbox) == 2
    assert QuotaAlertSent.objects.count() == 2


def test_the_beat_task_checks_every_configured_application(settings, alice, alice_app, subscription):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from portal.celery import app

    app.conf.task_always_eager = True
    try:
        quotas.quota_alert_set(application=alice_app, user=alice, percentages=[50])
        _meter(subscription, 600)
        assert quota_alerts_dispatch.apply().get() == 1
    finally:
        app.conf.task_always_eager = False
    assert len(mail.outbox) == 1


def test_it_refuses_nonsense_percentages(alice, alice_app):
    with pytest.raises(ApplicationError):
        quotas.quota_alert_set(application=alice_app, user=alice, percentages=[0])


def test_the_usage_page_saves_alerts_and_charlie_cannot(client, alice, charlie, alice_app):
    client.force_login(charlie)
    assert client.post(f"/analytics/usage/?application={alice_app.pk}", {"percentages": "50"}).status_code == 404
    assert client.get(f"/analytics/usage/?application={alice_app.pk}").status_code == 404
    assert not QuotaAlert.objects.exists()
    client.force_login(alice)
    response = client.post(f"/analytics/usage/?application={alice_app.pk}", {"percentages": "75, 100"})
    assert response.status_code == 302
    assert alice_app.quota_alert.percentages == [75, 100]
