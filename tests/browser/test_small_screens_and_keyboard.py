"""Usable at 375 px wide and from the keyboard alone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, log_in, save_journey_screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}


def test_pages_fit_a_375px_screen(browsing: Browsing, alice: Any, alice_app: Any, free_plan: Any) -> None:
    from portal.keys import services as keys
    from portal.plans import services as plans

    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    keys.api_key_issue(application=alice_app, label="a rather long label for a phone", actor=alice)
    page = browsing.new_page(viewport=PHONE)
    for path in ["/", "/apis/echo/", "/apis/echo/v1/", "/accounts/signup/", "/accounts/login/"]:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)
    save_journey_screenshot(page, "12-login-375px")
    log_in(page, alice.email, PASSWORD)
    for path in ["/dashboard/", f"/applications/{alice_app.pk}/", "/subscriptions/new/", "/accounts/profile/",
                 "/organizations/acme/", f"/analytics/usage/?application={alice_app.pk}", "/apis/echo/v2/reference/",
                 "/webhooks/"]:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)  # wide tables scroll inside their own region
        if path == "/dashboard/":
            save_journey_screenshot(page, "13-dashboard-375px")


def test_a_keyboard_user_skips_to_content_and_searches(browsing: Browsing, echo_api: Any) -> None:
    page = browsing.new_page()
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    search = page.get_by_label("Search APIs")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    expect(search).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.type("echo")
    page.keyboard.press("Enter")
    expect(page.get_by_text("1 API matching “echo”")).to_be_visible()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Echo":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Echo", level=1)).to_be_visible()
