"""A plan that needs approval: pending until an operator approves it in the admin."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_pro_subscription_waits_for_an_operator_then_is_active(
    browsing: Browsing, alice: Any, alice_app: Any, olivia: Any, pro_plan: Any
) -> None:
    developer = browsing.new_page()
    log_in(developer, alice.email, PASSWORD)
    developer.goto("/apis/echo/")
    developer.get_by_role("link", name="Subscribe to Pro").click()
    developer.get_by_label("Application").select_option(label="Acme Shop (Acme)")
    expect(developer.get_by_label("Plan")).to_have_value(str(pro_plan.pk))
    developer.get_by_role("button", name="Subscribe").click()
    expect(developer.get_by_text("pending approval by an operator")).to_be_visible()
    row = developer.get_by_role("region", name="Subscriptions").get_by_role("row", name=re.compile(r"^Echo"))
    expect(row).to_contain_text("Pending approval")
    developer.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(developer.get_by_text("1 subscription pending approval.")).to_be_visible()

    # The operator approves it in the Django admin.
    operator = browsing.new_page()
    operator.goto("/admin/login/?next=/admin/plans/subscription/")
    operator.get_by_label("Email address").fill(olivia.email)
    operator.get_by_label("Password").fill(PASSWORD)
    operator.get_by_role("button", name="Log in").click()
    operator.wait_for_url(re.compile(r"/admin/plans/subscription/"))
    operator.get_by_role("row", name=re.compile("Acme Shop")).get_by_role("checkbox").check()
    operator.locator("select[name=action]").select_option("subscriptions_approve")
    operator.get_by_role("button", name="Go").click()
    expect(operator.locator("ul.messagelist")).to_contain_text(re.compile("approved", re.IGNORECASE))

    # The developer sees it active.
    developer.goto(f"/applications/{alice_app.pk}/")
    subscriptions = developer.get_by_role("region", name="Subscriptions")
    expect(subscriptions.get_by_role("row", name=re.compile(r"^Echo"))).to_contain_text("Active")
    developer.goto("/dashboard/")
    expect(developer.get_by_text("pending approval.")).to_have_count(0)
    expect(developer.get_by_text("Echo · Pro")).to_be_visible()
    assert browsing.csp_violations == []  # the admin pages too
