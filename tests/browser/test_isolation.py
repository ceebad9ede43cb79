"""charlie (Globex) cannot reach alice's (Acme) application pages by URL."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_charlie_gets_not_found_for_every_page_of_alices_application(
    browsing: Browsing, alice: Any, alice_app: Any, charlie: Any, free_plan: Any
) -> None:
    from portal.keys import services as keys
    from portal.plans import services as plans

    key = keys.api_key_issue(application=alice_app, label="acme-prod", actor=alice).key
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    page = browsing.new_page()
    log_in(page, charlie.email, PASSWORD)
    app = f"/applications/{alice_app.pk}"
    for path in [
        f"{app}/",
        f"{app}/edit/",
        f"{app}/delete/",
        f"{app}/keys/new/",
        f"{app}/keys/{key.pk}/rotate/",
        f"{app}/keys/{key.pk}/revoke/",
        f"{app}/oauth/delete/",
        f"/subscriptions/{subscription.pk}/change/",
        f"/subscriptions/{subscription.pk}/cancel/",
    ]:
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        assert "Acme Shop" not in page.content(), path
        assert key.prefix not in page.content(), path

    page.goto("/dashboard/")
    expect(page.get_by_text("No applications yet — create one.")).to_be_visible()
    assert "Acme Shop" not in page.content()
