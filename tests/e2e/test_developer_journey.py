"""Developer: sign up and get a key in the portal (Chromium), call Echo through the
gateway with httpx and then with curl, see those calls on the usage chart and on
the draft invoice."""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.conftest import PASSWORD
from tests.e2e.conftest import Stack, requires_postgres, wait_drained, wait_for

pytestmark = [requires_postgres, pytest.mark.browser, pytest.mark.slow]

EMAIL = "dev@weather.test"
HTTPX_CALLS = 7
CURL_CALLS = 5


def _curl(url: str, key: str) -> int:
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "10", "--output", "/dev/null",
         "--write-out", "%{http_code}", "--header", f"Authorization: Bearer {key}", url],
        capture_output=True, text=True, check=True,
    )
    return int(result.stdout)


def test_developer_signs_up_calls_echo_and_sees_usage_and_invoice(
    make_stack: Any, browsing: Browsing, mailoutbox: Any
) -> None:
    from portal.accounts.models import User
    from portal.catalog import services as catalog
    from portal.plans import services as plans

    stack: Stack = make_stack()
    olivia = User.objects.create_user(email="olivia@tollway.test", password="x" * 20, is_staff=True,
                                      email_verified=True)
    api = catalog.api_create(actor=olivia, slug="echo", name="Echo", summary="Echoes requests", tags=["demo"])
    v1 = catalog.version_create(api=api, label="v1", upstreams=[{"url": stack.echo.url}], actor=olivia)
    catalog.version_transition(version=v1, to_state="published", actor=olivia)
    plans.plan_create(actor=olivia, api=api, slug="free", name="Free", rate_per_second=50, quota_per_day=1000,
                      monthly_price=Decimal("0"), included_requests=1000)
    gateway = stack.start_gateway()

    # Sign up, confirm the email, log in.
    page = browsing.new_page()
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization name").fill("Weatherco")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = re.search(r"https?://\S+/accounts/verify/\S+/", mailoutbox[0].body)
    assert link is not None, mailoutbox[0].body
    page.goto(link.group(0))
    expect(page.get_by_text("Your email address is confirmed")).to_be_visible()
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))

    # An application subscribed to Echo · Free, and a key read once.
    page.get_by_role("link", name="New application").click()
    page.get_by_label("Name").fill("Weather bot")
    page.get_by_role("button", name="Create application").click()
    page.get_by_role("link", name="Subscribe to an API").click()
    page.get_by_label("Plan").select_option(label="Echo · Free")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("Subscribed to Echo · Free")).to_be_visible()
    page.get_by_label("Label").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("It is shown only this once")).to_be_visible()
    key = page.get_by_label(re.compile("API key for Weather bot")).input_value()

    # Through the gateway: httpx, then curl.
    url = f"{gateway.url}/echo/v1/forecast?city=Oslo"
    wait_for(lambda: httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200, timeout=5,
             message="the new key never worked at the gateway")
    for _ in range(HTTPX_CALLS - 1):
        response = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        assert response.json()["path"].startswith("/forecast")
    assert [_curl(url, key) for _ in range(CURL_CALLS)] == [200] * CURL_CALLS
    calls = HTTPX_CALLS + CURL_CALLS
    assert stack.echo.served() == calls

    # The usage page: the chart's requests series adds up to those calls.
    wait_drained(stack)
    page.goto("/analytics/usage/")
    page.wait_for_selector("#usage-chart[data-rendered='1']", state="attached")
    assert page.locator("#kpi-requests").inner_text() == str(calls)
    charts = json.loads(page.locator("#analytics-charts").text_content() or "[]")
    usage = next(c for c in charts if c["canvas"] == "usage-chart")
    requests = next(d for d in usage["datasets"] if d["label"] == "Requests")
    assert sum(requests["data"]) == calls

    # The draft invoice of this month carries the usage.
    page.goto("/invoices/")
    page.locator("#invoice-table a").first.click()
    page.wait_for_selector("#invoice-lines")
    line = page.locator("#invoice-lines tbody tr").first.inner_text()
    assert "Free" in line
    assert re.search(rf"\b{calls}\b", line), line
    assert browsing.csp_violations == []
