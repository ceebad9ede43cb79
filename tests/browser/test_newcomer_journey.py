"""A developer who has never used Tollway goes from the marketplace to a working key."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, save_journey_screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

EMAIL = "newcomer@example.test"


def test_newcomer_signs_up_subscribes_and_gets_a_key_once(browsing: Browsing, echo_api: Any, mailoutbox: Any) -> None:
    page = browsing.new_page()

    # Sign up.
    page.goto("/")
    save_journey_screenshot(page, "01-marketplace")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization name").fill("Newco")
    save_journey_screenshot(page, "02-signup")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    # An unverified account cannot log in yet.
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Confirm your email address first")).to_be_visible()

    # Verify by following the link in the captured email.
    assert len(mailoutbox) == 1
    link = re.search(r"https?://\S+/accounts/verify/\S+/", mailoutbox[0].body)
    assert link is not None, mailoutbox[0].body
    page.goto(link.group(0))
    expect(page.get_by_text("Your email address is confirmed")).to_be_visible()

    # Log in.
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    save_journey_screenshot(page, "03-login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_text("No applications yet — create one.")).to_be_visible()
    save_journey_screenshot(page, "04-dashboard-empty")

    # Search the marketplace and open Echo.
    page.get_by_role("link", name="Marketplace").click()
    page.get_by_label("Search APIs").fill("echo")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 API matching “echo”")).to_be_visible()
    save_journey_screenshot(page, "05-search")
    page.get_by_role("link", name="Echo", exact=True).click()

    # Compare plans.
    expect(page.get_by_role("heading", name="Echo", level=1)).to_be_visible()
    plans = page.get_by_role("table", name=re.compile("Compare plans"))
    expect(plans.get_by_role("row", name=re.compile(r"^Free"))).to_contain_text("Instant")
    expect(plans.get_by_role("row", name=re.compile(r"^Pro"))).to_contain_text("Needs approval")
    expect(plans.get_by_role("row", name=re.compile(r"^Pro"))).to_contain_text("49.00 EUR")
    expect(page.get_by_role("row", name=re.compile(r"^v1"))).to_contain_text("Deprecated")
    save_journey_screenshot(page, "06-api-detail")

    # Create an application.
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("link", name="New application").click()
    page.get_by_label("Name").fill("Weather bot")
    save_journey_screenshot(page, "07-new-application")
    page.get_by_role("button", name="Create application").click()
    expect(page.get_by_role("heading", name="Weather bot", level=1)).to_be_visible()

    # Subscribe it to Free.
    page.get_by_role("link", name="Subscribe to an API").click()
    page.get_by_label("Plan").select_option(label="Echo · Free")
    save_journey_screenshot(page, "08-subscribe")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("Subscribed to Echo · Free")).to_be_visible()
    subscriptions = page.get_by_role("region", name="Subscriptions")
    expect(subscriptions.get_by_role("row", name=re.compile(r"^Echo"))).to_contain_text("Active")

    # Create a key and read it once.
    page.get_by_label("Label").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("It is shown only this once")).to_be_visible()
    secret = page.get_by_label(re.compile("API key for Weather bot")).input_value()
    assert re.fullmatch(r"tw_[0-9A-Za-z]{30,}", secret), secret
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    save_journey_screenshot(page, "09-key-shown-once")

    # Back on the application page, and after a reload, only the prefix shows.
    page.get_by_role("link", name=re.compile("I have copied it")).click()
    page.reload()
    prefix = secret[:11]
    expect(page.get_by_role("row", name=re.compile(re.escape(prefix)))).to_contain_text("laptop")
    assert secret not in page.content()
    save_journey_screenshot(page, "10-application")

    assert browsing.csp_violations == []
