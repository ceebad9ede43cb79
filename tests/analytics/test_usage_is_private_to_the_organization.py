"""Developers see their own organizations' usage and invoices; charlie (Globex)
is denied Acme's, operators see all."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from analytics.billing import services as billing
from portal.plans.models import Subscription, SubscriptionStatus
from tests.analytics.conftest import commit_requests, make_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def metered(alice_app, charlie_app, free_plan):
    now = int(time.time() * 1000)
    subs = {}
    events = []
    for app, n in ((alice_app, 7), (charlie_app, 3)):
        sub = Subscription.objects.create(application=app, plan=free_plan, api_id=free_plan.api_id,
                                          status=SubscriptionStatus.ACTIVE)
        subs[app.pk] = sub
        events += [make_request(ts=now - 1000 - i, application_id=app.pk, subscription_id=sub.pk,
                              plan_id=free_plan.pk, api_id=free_plan.api_id) for i in range(n)]
    commit_requests(events, consumer="test")
    return subs


def _api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _sum(rows):
    return sum(r["requests"] for r in rows)


def test_it_shows_alice_and_bob_only_acme_usage(alice, bob, metered, alice_app):
    for user in (alice, bob):
        body = _api(user).get("/api/v1/usage/", {"granularity": "d", "page_size": 200}).json()
        assert {r["application_id"] for r in body["results"]} == {alice_app.pk}
        assert _sum(body["results"]) == 7
        assert _api(user).get("/api/v1/usage/summary/", {"granularity": "m"}).json()["requests"] == 7


def test_it_denies_charlie_acme_usage_even_when_asked_by_id(charlie, metered, alice_app, charlie_app):
    body = _api(charlie).get("/api/v1/usage/", {"granularity": "d", "application_id": alice_app.pk}).json()
    assert body["results"] == []
    summary = _api(charlie).get("/api/v1/usage/summary/", {"granularity": "d", "application_id": alice_app.pk})
    assert summary.json()["requests"] == 0
    own = _api(charlie).get("/api/v1/usage/summary/", {"granularity": "d"}).json()
    assert own["requests"] == 3


def test_it_shows_operators_everything(olivia, metered):
    assert _api(olivia).get("/api/v1/usage/summary/", {"granularity": "h"}).json()["requests"] == 10


def test_it_rejects_anonymous_callers(metered):
    assert APIClient().get("/api/v1/usage/").status_code in (401, 403)


def test_it_denies_charlie_acme_usage_page_and_invoices(client, alice, charlie, acme, metered, alice_app):
    from django.utils import timezone

    from analytics.billing.rules import month_start

    [invoice] = billing.invoice_refresh(organization_id=acme.pk, month=month_start(timezone.now()))
    assert invoice.lines.get().used_requests == 7
    client.force_login(charlie)
    assert client.get(f"/analytics/usage/?application={alice_app.pk}").status_code == 404
    assert client.get(f"/invoices/{invoice.pk}/").status_code == 404
    assert client.get(f"/invoices/{invoice.pk}/?format=csv").status_code == 404
    assert client.get(f"/invoices/{invoice.pk}/?format=json").status_code == 404
    listing = client.get("/invoices/")
    assert listing.status_code == 200
    assert f"/invoices/{invoice.pk}/" not in listing.content.decode()
    for page in ("/analytics/", "/analytics/deprecations/", "/analytics/billing/", "/analytics/reconciliation/"):
        assert client.get(page).status_code == 403, page

    client.force_login(alice)
    assert client.get(f"/invoices/{invoice.pk}/").status_code == 200
    assert client.get(f"/analytics/usage/?application={alice_app.pk}").status_code == 200
    assert client.get("/analytics/").status_code == 403  # developers are not operators


def test_finance_sees_the_billing_report_but_not_the_operator_dashboard(client, charlie, metered):
    from django.contrib.auth.models import Group

    charlie.groups.add(Group.objects.get(name="finance"))
    client.force_login(charlie)
    assert client.get("/analytics/billing/").status_code == 200
    assert client.get("/analytics/reconciliation/").status_code == 200
    assert client.get("/analytics/").status_code == 403
