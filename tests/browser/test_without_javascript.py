"""With JavaScript off, a developer still creates an application, subscribes, gets a key
and revokes it: every page is plain HTML forms."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_the_dashboard_works_without_javascript(browsing: Browsing, alice: Any, free_plan: Any) -> None:
    page = browsing.new_page(javascript=False)
    log_in(page, alice.email, PASSWORD)
    page.get_by_role("link", name="New application").first.click()
    page.get_by_label("Name").fill("No-JS app")
    page.get_by_role("button", name="Create application").click()
    page.get_by_role("link", name="Subscribe to an API").click()
    page.get_by_label("Plan").select_option(label="Echo · Free")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("Subscribed to Echo · Free")).to_be_visible()

    page.get_by_role("button", name="Create key").click()
    secret_field = page.get_by_label(re.compile("API key for No-JS app"))
    secret = secret_field.input_value()
    assert secret.startswith("tw_")
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()  # needs JS; the field is selectable

    page.get_by_role("link", name=re.compile("I have copied it")).click()
    page.get_by_role("link", name=re.compile(r"Revoke")).click()
    expect(page.get_by_role("heading", name=re.compile("Revoke key"))).to_be_visible()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text(re.compile(r"Key tw_\w+… revoked"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(re.escape(secret[:11])))).to_contain_text("revoked")
