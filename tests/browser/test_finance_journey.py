"""Finance's round: log in to the billing report, a bad month is a form error (400),
amounts rounded to cents, a free plan "not billed", an issued invoice numbered
TW-2026-000001 with its PDF, corrected by credit note, paid; another voided. axe-core
checks the new pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from playwright.sync_api import expect

from tests.analytics.billing_fixtures import issued_october, meter, subscribe
from tests.browser.conftest import Browsing, save_journey_screenshot
from tests.browser.test_accessibility import AXE, _violations
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def fiona(db: Any) -> Any:
    from portal.accounts.models import User

    user = User.objects.create_user(email="fiona@tollway.test", password=PASSWORD, email_verified=True)
    # get_or_create: live_server tests flush the tables, the data migration's group with them.
    user.groups.add(Group.objects.get_or_create(name="finance")[0])
    return user


def test_finance_reads_the_report_and_runs_the_invoice_lifecycle(
    browsing: Browsing, fiona: Any, acme: Any, alice_app: Any, globex: Any, charlie_app: Any,
    pro_plan: Any, free_plan: Any,
) -> None:
    from analytics.billing import services as billing
    from analytics.models import Invoice

    acme_invoice = issued_october(alice_app, pro_plan)  # 49.12 EUR, TW-2026-000001
    meter(subscribe(charlie_app, free_plan), 50)
    [free_draft] = billing.invoice_refresh(organization_id=globex.pk, month=acme_invoice.month.replace(month=11))

    page = browsing.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(fiona.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/analytics/billing/$"))  # not "No applications yet"
    expect(page.get_by_role("heading", level=1)).to_contain_text("Revenue")

    response = page.goto("/analytics/billing/?month=abc")
    assert response is not None
    assert response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Give a month as YYYY-MM")
    expect(page.get_by_label("Month")).to_have_attribute("aria-invalid", "true")
    save_journey_screenshot(page, "analytics-billing-report-bad-month")

    page.goto("/analytics/billing/?month=2026-10")
    expect(page.locator("#revenue-organization")).to_contain_text("49.12")

    # The issued invoice, its PDF, a credit note, then paid.
    page.goto("/invoices/")
    page.get_by_role("row", name=re.compile("TW-2026-000001")).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invoice TW-2026-000001")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Issued")
    expect(page.locator("#invoice-total")).to_have_text("49.12")
    pdf = page.request.get(page.get_by_role("link", name="PDF").get_attribute("href"))
    assert pdf.ok
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    page.get_by_label("Amount to credit").fill("60")
    page.get_by_label("Reason for the credit note").fill("Outage on 5 October")
    page.get_by_role("button", name="Issue credit note").click()
    expect(page.get_by_text("At most 49.12 EUR.")).to_be_visible()
    page.get_by_label("Amount to credit").fill("2.50")
    page.get_by_role("button", name="Issue credit note").click()
    expect(page.get_by_role("status")).to_contain_text("Credit note TW-2026-000002 issued.")
    expect(page.locator("#invoice-balance")).to_have_text("46.62")
    save_journey_screenshot(page, "analytics-invoice-issued-with-credit-note")
    axe = _axe(browsing, page, [page.url, "/analytics/billing/?month=abc"])
    page.get_by_role("button", name="Mark as paid").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Paid")
    expect(page.get_by_role("heading", level=1)).to_contain_text("TW-2026-000001")  # never changes

    # A free plan is not billed.
    page.goto(f"/invoices/{free_draft.pk}/")
    expect(page.locator("#invoice-lines")).to_contain_text("not billed")

    # Voiding another issued invoice: a credit note for all of it, the number kept.
    other = Invoice.objects.create(organization=globex, month=acme_invoice.month.replace(month=9), currency="EUR",
                                   total="10.00")
    with transaction.atomic():
        other.number = billing.invoice_number_next(year=2026)
        other.status = "final"
        other.save()
    page.goto(f"/invoices/{other.pk}/")
    page.get_by_label("Reason for voiding").fill("Sent twice")
    page.get_by_role("button", name="Void invoice").click()
    voided = "Invoice TW-2026-000003 voided. Credit note TW-2026-000004 issued."
    expect(page.get_by_role("status")).to_contain_text(voided)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Void")

    assert axe == {}
    assert browsing.csp_violations == []


def _axe(browsing: Browsing, source: Any, paths: list[str]) -> dict[str, list[str]]:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs it (cd tests/browser && npm ci)")
    context = browsing.browser.new_context(base_url=browsing.base_url, bypass_csp=True)
    context.add_cookies(source.context.cookies())
    page = context.new_page()
    browsing.pages.append(page)
    found = {}
    for path in paths:
        page.goto(path)
        found[path] = _violations(page)
    return {k: v for k, v in found.items() if v}
