"""An operator's round: the approvals inbox (new subscriptions and plan changes, counted
on the admin index and the dashboard), the override form with its field errors, and
admin entries that tell developer applications from OAuth clients. axe-core checks the
new pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, save_journey_screenshot
from tests.browser.test_accessibility import AXE, _violations
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _admin_log_in(page: Any, email: str, next_url: str) -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(next_url)))


def test_an_operator_works_through_approvals_and_overrides(
    browsing: Browsing, olivia: Any, alice: Any, alice_app: Any, charlie: Any, charlie_app: Any,
    free_plan: Any, pro_plan: Any,
) -> None:
    from portal.plans import services as plans
    from portal.plans.models import Override

    plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)  # waits for approval
    change = plans.subscription_create(application=charlie_app, plan=free_plan, actor=charlie)
    plans.subscription_change_plan(subscription=change, plan=pro_plan, actor=charlie)  # Free -> Pro waits too

    page = browsing.new_page()
    _admin_log_in(page, olivia.email, "/admin/")
    inbox = page.get_by_role("region", name="Approvals")
    expect(inbox).to_contain_text("2 requests awaiting approval")
    keys = page.locator("#content-main")
    expect(keys.get_by_role("link", name="Developer applications", exact=True)).to_be_visible()
    expect(keys.get_by_role("link", name="OAuth clients (of developer applications)")).to_be_visible()
    expect(keys.get_by_role("link", name="Applications", exact=True)).to_have_count(0)

    page.goto("/analytics/")
    expect(page.locator("#approvals-waiting")).to_contain_text("2 requests awaiting approval")
    page.locator("#approvals-waiting").get_by_role("link").click()
    page.wait_for_url(re.compile(r"/admin/plans/approval/"))
    expect(page.get_by_role("row", name=re.compile("Acme Shop"))).to_contain_text("New subscription to Pro")
    expect(page.get_by_role("row", name=re.compile("Globex"))).to_contain_text("Plan change Free → Pro")
    save_journey_screenshot(page, "admin-approvals-inbox")
    approvals_url = page.url

    # The override action opens its own form; bad values are field errors there.
    page.goto("/admin/plans/subscription/")
    page.get_by_role("row", name=re.compile("Globex")).get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option("subscriptions_set_override")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_role("heading", name="Set an override")).to_be_visible()
    factor, days = page.get_by_label("Multiply the plan's limits by"), page.get_by_label("For how many days")
    for bad_factor, bad_days, error in [
        ("-5", "7", "greater than or equal to 0.1"),
        ("1e9", "7", "less than or equal to 1000"),
        ("0.01", "7", "greater than or equal to 0.1"),
        ("", "", "This field is required."),
    ]:
        factor.fill(bad_factor)
        days.fill(bad_days)
        page.get_by_role("button", name="Set override").click()
        expect(page.locator(".errorlist").first).to_contain_text(error)
        expect(page.get_by_text("No action selected")).to_have_count(0)
    assert not Override.objects.exists()
    save_journey_screenshot(page, "admin-set-override-errors")
    form_violations = _violations_bypassing_csp(browsing, page.url, olivia, page)
    factor.fill("2")
    days.fill("7")
    page.get_by_role("button", name="Set override").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Set overrides on 1 object(s).")
    assert Override.objects.get().reason.startswith("×2 for 7 days")

    # Both requests approved from the one inbox.
    page.goto(approvals_url)
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("approvals_approve")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Approved 2 object(s).")
    page.goto("/admin/")
    expect(page.get_by_role("region", name="Approvals")).to_contain_text("0 requests awaiting approval")

    assert form_violations == {}
    assert browsing.csp_violations == []


def _violations_bypassing_csp(browsing: Browsing, url: str, user: Any, source: Any) -> dict[str, list[str]]:
    """axe on the approvals inbox and the override form page (axe is injected as a
    script, which the portal's CSP would refuse, so in a context that bypasses it)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs it (cd tests/browser && npm ci)")
    context = browsing.browser.new_context(base_url=browsing.base_url, bypass_csp=True)
    context.add_cookies(source.context.cookies())
    page = context.new_page()
    browsing.pages.append(page)
    found: dict[str, list[str]] = {}
    page.goto("/admin/plans/approval/")
    found["approvals"] = _violations(page)
    page.goto("/admin/plans/subscription/")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("subscriptions_set_override")
    page.get_by_role("button", name="Go").click()
    page.get_by_role("button", name="Set override").click()  # blank: the page with its errors
    expect(page.locator(".errorlist").first).to_be_visible()
    found["override form"] = _violations(page)
    return {k: v for k, v in found.items() if v}
