"""Finance lands on the billing report; amounts are rounded to the currency's minor unit
in HTML, CSV and JSON alike (ROUND_HALF_UP); a free plan's line reads "not billed"."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Group

from analytics.billing import services as billing
from tests.analytics.billing_fixtures import OCT, issued_october, meter, subscribe
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def fiona(db):
    from portal.accounts.models import User

    user = User.objects.create_user(email="fiona@tollway.test", password=PASSWORD, email_verified=True)
    user.groups.add(Group.objects.get(name="finance"))
    return user


def test_finance_lands_on_the_billing_report(client, fiona, alice):
    response = client.post("/accounts/login/", {"username": fiona.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/analytics/billing/"
    assert client.get("/dashboard/")["Location"] == "/analytics/billing/"  # not "create an application"
    client.logout()
    developer = client.post("/accounts/login/", {"username": alice.email, "password": PASSWORD})
    assert developer["Location"] == "/dashboard/"


def test_amounts_are_rounded_in_every_format(client, fiona, acme, alice_app, pro_plan, charlie_app, free_plan):
    invoice = issued_october(alice_app, pro_plan)
    client.force_login(fiona)
    report = client.get("/analytics/billing/", {"month": "2026-10", "by": "organization", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(report.content.decode())))
    assert [(r["label"], r["amount"]) for r in rows] == [("Acme", "49.12")]
    as_json = json.loads(client.get("/analytics/billing/", {"month": "2026-10", "format": "json"}).content)
    assert as_json[0]["amount"] == "49.12"

    exported = client.get(f"/invoices/{invoice.pk}/", {"format": "csv"}).content.decode()
    lines = list(csv.DictReader(io.StringIO(exported)))
    assert [(ln["base_fee"], ln["overage_fee"], ln["amount"]) for ln in lines] == [("49.00", "0.12", "49.12")]
    detail = json.loads(client.get(f"/invoices/{invoice.pk}/", {"format": "json"}).content)
    assert detail["total"] == "49.12"
    assert detail["lines"][0]["amount"] == "49.12"
    listing = list(csv.DictReader(io.StringIO(client.get("/invoices/", {"format": "csv"}).content.decode())))
    assert {r["total"] for r in listing if r["number"] == invoice.number} == {"49.12"}
    assert ">49.12<" in client.get(f"/invoices/{invoice.pk}/").content.decode()


def test_a_free_plan_is_not_billed(client, fiona, globex, charlie_app, free_plan):
    meter(subscribe(charlie_app, free_plan), 50)
    [draft] = billing.invoice_refresh(organization_id=globex.pk, month=OCT)
    client.force_login(fiona)
    html = client.get(f"/invoices/{draft.pk}/").content.decode()
    assert "not billed" in html
    [line] = json.loads(client.get(f"/invoices/{draft.pk}/", {"format": "json"}).content)["lines"]
    assert line["billed"] is False
    assert (line["used_requests"], line["included_requests"], line["overage_requests"]) == (50, None, None)
    assert line["amount"] == "0.00"
