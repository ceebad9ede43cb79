"""Developers' journeys (issue 11): usage that reconciles on the page, breakdowns by
endpoint, status and key, a one-point chart that shows, code samples for every
operation of the reference, and a retired version that does not invite calls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from tests.analytics.conftest import commit_requests, make_request
from tests.browser.conftest import Browsing, log_in, save_journey_screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}
ECHO_OPENAPI = Path(__file__).resolve().parents[2] / "portal" / "demo" / "echo-openapi.yaml"
KEY = "tw_usage01"


def _fits(page: Any, path: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (path, width)


def _seed_usage(app: Any) -> None:
    """One hour's traffic, all in the hour before now: 15 requests, 8 admitted."""
    ts = int((time.time() - 20 * 60) * 1000)
    sub = app.subscriptions.get()

    def req(n: int, status: int, decision: str, endpoint: str = "/anything") -> list[Any]:
        return [make_request(ts=ts, api_id=sub.plan.api_id, application_id=app.pk, key_prefix=KEY,
                             subscription_id=sub.pk, plan_id=sub.plan_id, status=status, decision=decision,
                             endpoint=endpoint) for _ in range(n)]

    commit_requests([
        *req(5, 200, "allowed"), *req(2, 500, "allowed", "/items/{id}"), *req(1, 404, "allowed", "/items/{id}"),
        *req(3, 429, "rate_limited"), *req(1, 429, "quota_exceeded"), *req(1, 403, "forbidden"),
        *req(1, 410, "gone"), *req(1, 502, "upstream_error"),
    ])


def test_usage_reconciles_breaks_down_and_fits_a_phone(
    browsing: Browsing, alice: Any, alice_app: Any, free_plan: Any
) -> None:
    from portal.plans import services as plans

    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    _seed_usage(alice_app)
    page = browsing.new_page(viewport=PHONE)
    log_in(page, alice.email, PASSWORD)
    page.goto(f"/analytics/usage/?application={alice_app.pk}")
    _fits(page, "usage")

    expect(page.locator("#rec-requests")).to_have_text("15")
    expect(page.locator("#rec-admitted")).to_have_text("8")  # what the quota counts
    expect(page.locator("#rec-rejected")).to_have_text("6")
    expect(page.locator("#rec-upstream-5xx")).to_have_text("2")
    expect(page.locator("#rec-unreachable")).to_have_text("1")
    reasons = page.locator("#reconciliation-table tr.rec-reason")
    expect(reasons).to_have_count(3)
    expect(reasons.filter(has_text="429")).to_contain_text("Rate limit or quota exceeded")
    expect(reasons.filter(has_text="429").locator("td.num")).to_have_text("4")
    expect(reasons.filter(has_text="403").locator("td.num")).to_have_text("1")
    expect(reasons.filter(has_text="410").locator("td.num")).to_have_text("1")
    expect(page.locator("#rec-explained")).to_contain_text("only the 8 requests it admitted")

    endpoints = page.locator("#by-endpoint tbody tr")
    expect(endpoints.filter(has_text="/anything").locator("td").nth(1)).to_have_text("12")
    expect(endpoints.filter(has_text="/items/{id}").locator("td").nth(1)).to_have_text("3")
    statuses = page.locator("#by-status tbody tr")
    expect(statuses).to_have_count(7)  # 200, 403, 404, 410, 429, 500, 502
    expect(statuses.filter(has_text="429").locator("td").nth(2)).to_have_text("0")  # none admitted
    expect(page.locator("#by-key tbody tr")).to_have_count(1)
    expect(page.locator("#by-key tbody tr td").first).to_have_text(KEY)

    # 24 hours at hourly granularity, all the traffic in one hour: one point, drawn as a visible dot.
    page.wait_for_selector("#usage-chart[data-rendered='1']")
    points = page.evaluate("""() => {
        const meta = Chart.getChart(document.getElementById('usage-chart')).getDatasetMeta(0);
        return meta.data.map(p => p.options.radius);
    }""")
    assert len(points) == 1, points
    assert points[0] >= 5, points
    save_journey_screenshot(page, "20-usage-375px")


def test_every_operation_has_samples_with_copy_buttons(
    browsing: Browsing, alice: Any, alice_app: Any, echo_api: Any, olivia: Any
) -> None:
    from portal.catalog import services as catalog
    from portal.keys import services as keys

    document = yaml.safe_load(ECHO_OPENAPI.read_text())
    catalog.version_update(version=echo_api.versions.get(label="v2"), actor=olivia, openapi=document)
    operations = [(m.upper(), p) for p, item in document["paths"].items() for m in item]
    key = keys.api_key_issue(application=alice_app, label="samples", actor=alice)

    page = browsing.new_page(viewport=PHONE)
    browsing.pages[-1].context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, alice.email, PASSWORD)
    page.goto("/apis/echo/v2/reference/")
    _fits(page, "reference")
    samples = page.locator(".code-samples details")
    expect(samples).to_have_count(len(operations))
    html = page.content()
    assert key.secret not in html  # never the real key, only its prefix as a hint
    for i, (method, path) in enumerate(operations):
        op = samples.nth(i)
        expect(op.locator("summary")).to_contain_text(f"{method} {path}")
        op.locator("summary").click()
        for language, needle in (("curl", "$TOLLWAY_API_KEY"), ("python", 'os.environ["TOLLWAY_API_KEY"]'),
                                 ("javascript", "process.env.TOLLWAY_API_KEY")):
            code = op.locator(f"code[data-sample='{language}']")
            expect(code).to_contain_text(needle)
            expect(code).to_contain_text(f"/echo/v2{path}")
            if method == "POST" and language != "curl":
                expect(code).to_contain_text("json" if language == "python" else "JSON.stringify")
        _fits(page, f"reference {method} {path}")
    first = samples.nth(0)
    button = first.get_by_role("button", name="Copy the curl sample")
    expect(button).to_be_visible()
    button.click()
    expect(first.locator("[role=status]").first).to_have_text("Copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl "), copied
    assert "$TOLLWAY_API_KEY" in copied, copied
    save_journey_screenshot(page, "21-reference-samples-375px")

    # Without JavaScript the samples are all there; copy buttons stay hidden.
    bare = browsing.new_page(viewport=PHONE, javascript=False)
    bare.goto("/apis/echo/v2/reference/")
    expect(bare.locator(".code-samples details")).to_have_count(len(operations))
    expect(bare.get_by_role("button", name="Copy the curl sample").first).to_be_hidden()


def test_a_retired_version_says_so_and_offers_no_call(browsing: Browsing, echo_api: Any, olivia: Any) -> None:
    from portal.catalog import services as catalog

    v1 = echo_api.versions.get(label="v1")
    catalog.version_update(version=v1, actor=olivia, openapi=yaml.safe_load(ECHO_OPENAPI.read_text()))
    catalog.version_transition(version=v1, to_state="retired", actor=olivia)
    page = browsing.new_page(viewport=PHONE)
    page.goto("/apis/echo/v1/")
    _fits(page, "retired docs")
    expect(page.get_by_role("note")).to_contain_text("This version is retired")
    expect(page.get_by_role("heading", name="Getting started")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("curl")
    expect(page.locator("main").get_by_role("link", name="v2")).to_be_visible()
    page.goto("/apis/echo/v1/reference/")
    _fits(page, "retired reference")
    expect(page.get_by_role("note")).to_contain_text("This version is retired")
    expect(page.locator(".code-samples")).to_have_count(0)
    expect(page.locator(".try-it")).to_have_count(0)
    # The published successor still has both.
    page.goto("/apis/echo/v2/")
    expect(page.get_by_role("heading", name="Getting started")).to_be_visible()
