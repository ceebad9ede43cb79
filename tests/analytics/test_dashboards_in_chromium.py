"""The analytics pages in a real Chromium: charts drawn (Chart.js from the npm
package, no CSP violation), tables beside them, one screenshot per page.

Screenshots go to test-artifacts/analytics/, and to docs/screenshots/ with
TOLLWAY_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics.billing import services as billing
from analytics.reports import services as reports
from portal.plans.models import Subscription, SubscriptionStatus
from tests.analytics.conftest import commit_requests, make_request

# Playwright's sync API runs an event loop in this thread; the ORM calls in the test
# body are still plain synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("TOLLWAY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _page_as(chromium: Any, live_server: Any, user: Any) -> tuple[Any, list[str]]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def _screenshot(page: Any, name: str) -> None:
    folders = [ROOT / "test-artifacts" / "analytics"]
    if os.environ.get("TOLLWAY_UPDATE_SCREENSHOTS") == "1":
        folders.append(ROOT / "docs" / "screenshots")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"analytics-{name}.png"), full_page=True)


def _charts_drawn(page: Any, *canvas_ids: str) -> None:
    for cid in canvas_ids:
        page.wait_for_selector(f"#{cid}[data-rendered='1']", state="attached")
        # Chart.js sized the canvas and painted pixels onto it.
        painted = page.evaluate(
            """(id) => { const c = document.getElementById(id); const ctx = c.getContext('2d');
                 const d = ctx.getImageData(0, 0, c.width, c.height).data;
                 for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) return true; } return false; }""",
            cid,
        )
        assert painted, f"chart {cid} is blank"


@pytest.fixture
def traffic(alice_app, charlie_app, free_plan, pro_plan, acme, globex):
    rng = random.Random(5)
    now = int(time.time() * 1000)
    events = []
    subs = {}
    admitted: dict[int, int] = {}
    for app, plan, volume in ((alice_app, pro_plan, 1800), (charlie_app, free_plan, 700)):
        sub = Subscription.objects.create(application=app, plan=plan, api_id=plan.api_id,
                                          status=SubscriptionStatus.ACTIVE)
        subs[app.pk] = sub
        for _ in range(volume):
            status = rng.choice([200] * 12 + [404, 500, 429])
            events.append(make_request(
                ts=now - rng.randrange(23 * 3_600_000), application_id=app.pk, subscription_id=sub.pk,
                plan_id=plan.pk, api_id=plan.api_id, version=rng.choice(["v1", "v2", "v2"]), status=status,
                decision="rate_limited" if status == 429 else "allowed", latency_ms=rng.lognormvariate(3.2, 0.7),
                key_prefix="tw_AcmeKey1" if app == alice_app else "tw_GlobexK1",
            ))
            admitted[app.pk] = admitted.get(app.pk, 0) + (status != 429)
    commit_requests(events, consumer="seed")
    from analytics.billing.rules import month_start
    from analytics.reports.selectors import admitted_by_subscription_day

    for org in (acme, globex):
        billing.invoice_refresh(organization_id=org.pk, month=month_start(time_now()))
    today = time_now().date()
    counts = admitted_by_subscription_day(day=today)
    # The gateway saw two more than the rollups for alice: the view must flag it.
    gateway = {sid: n + (2 if sid == subs[alice_app.pk].pk else 0) for sid, n in counts.items()}
    reports.reconciliation_record(day=today, gateway_counts=gateway)
    return {"subs": subs, "admitted": admitted}


def time_now():
    from django.utils import timezone

    return timezone.now()


def test_the_operator_pages_draw_their_charts(chromium, live_server, olivia, alice_app, traffic):
    page, errors = _page_as(chromium, live_server, olivia)

    page.goto("/analytics/?range=24h")
    _charts_drawn(page, "traffic-chart", "latency-chart", "status-chart")
    assert page.locator("#kpi-requests").inner_text() == "2,500"
    assert "Acme Shop" in page.locator("#top-applications").inner_text()
    assert "Acme" in page.locator("#top-organizations").inner_text()
    _screenshot(page, "operator-dashboard")

    page.goto(f"/analytics/?range=7d&application={alice_app.pk}")
    _charts_drawn(page, "traffic-chart")
    assert page.locator("#kpi-requests").inner_text() == "1,800"

    page.goto("/analytics/deprecations/")
    _charts_drawn(page, "deprecation-chart")
    table = page.locator("#deprecation-table").inner_text()
    assert "Acme Shop" in table
    assert "Globex Tool" in table
    assert "v1" in table
    _screenshot(page, "deprecation-report")

    page.goto("/analytics/billing/")
    _charts_drawn(page, "revenue-organization-chart")
    assert "Acme" in page.locator("#revenue-organization").inner_text()
    _screenshot(page, "billing-report")

    page.goto("/analytics/reconciliation/")
    assert page.locator("#mismatch-count").inner_text() == "1"
    assert page.locator("#reconciliation-table tr.mismatch").count() == 1
    _screenshot(page, "reconciliation")
    assert errors == []


def test_the_developer_pages_show_only_their_own_data(chromium, live_server, alice, alice_app, acme, traffic):
    page, errors = _page_as(chromium, live_server, alice)

    page.goto(f"/analytics/usage/?application={alice_app.pk}")
    _charts_drawn(page, "usage-chart", "usage-latency-chart")
    assert page.locator("#kpi-requests").inner_text() == "1,800"
    quota = page.locator("#quota-table").inner_text()
    assert "monthly" in quota
    assert "1,000,000" in quota
    assert "Globex" not in page.content()
    _screenshot(page, "developer-usage")

    page.goto("/invoices/")
    page.get_by_role("link", name=time_now().strftime("%B %Y")).click()
    page.wait_for_selector("#invoice-lines")
    assert "Pro" in page.locator("#invoice-lines").inner_text()
    from analytics.models import Invoice

    invoice = Invoice.objects.get(organization=acme)
    line = invoice.lines.get()
    assert line.used_requests == traffic["admitted"][alice_app.pk]
    assert invoice.total > 0
    assert page.locator("#invoice-total").inner_text() == f"{invoice.total:.2f}"
    page.emulate_media(media="print")
    _screenshot(page, "invoice-print")
    assert errors == []
