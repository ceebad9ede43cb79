"""A developer's webhooks in the portal: add an endpoint (its secret shown once), send a
test event and see it in the delivery log, retry a failed delivery, rotate the secret,
disable the endpoint. Deliveries go to a real listener and verify with standardwebhooks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, log_in
from tests.conftest import PASSWORD
from tests.portal.webhooks.conftest import Listener, Reply, deliver_pending, verified

pytestmark = pytest.mark.browser


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


def test_a_developer_adds_tests_and_rotates_an_endpoint(
    browsing: Browsing, alice: Any, charlie: Any, acme: Any, listener: Listener
) -> None:
    page = browsing.new_page()
    log_in(page, alice.email, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_text("No endpoints yet")).to_be_visible()
    page.get_by_role("link", name="New endpoint").click()
    page.get_by_label("URL").fill(listener.url())
    page.get_by_label(re.compile(r"key\.revoked —")).check()
    page.get_by_label(re.compile(r"subscription\.approved —")).check()
    page.get_by_role("button", name="Create endpoint").click()

    expect(page.get_by_text("It is shown only this once")).to_be_visible()
    secret = page.get_by_label(re.compile("Signing secret for")).input_value()
    assert secret.startswith("whsec_")
    page.get_by_role("link", name=re.compile("back to the endpoint")).click()
    expect(page.get_by_test_id("endpoint-url")).to_have_text(listener.url())
    assert secret not in page.content()  # only its prefix from now on

    # Send test event: the delivery appears in the log, signed with that secret.
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_text("Test event queued")).to_be_visible()
    deliver_pending()
    page.reload()
    log = page.get_by_test_id("delivery-log")
    expect(log.get_by_role("row", name=re.compile("webhook.test"))).to_contain_text("succeeded")
    expect(log).to_contain_text("HTTP 200")
    assert verified(secret, listener.received[0])["type"] == "webhook.test"

    # A failed delivery, then a manual retry once the receiver is fixed.
    listener.default = Reply(500, b"receiver broken")
    page.get_by_role("button", name="Send test event").click()
    deliver_pending()
    page.reload()
    failed = log.get_by_role("row").filter(has_text="failed")
    expect(failed).to_contain_text("HTTP 500")
    expect(failed).to_contain_text("receiver broken")
    listener.default = Reply(200, b"fixed")
    failed.get_by_role("button", name=re.compile("Retry")).click()
    expect(page.get_by_text("queued again")).to_be_visible()
    deliver_pending()
    page.reload()
    expect(log.get_by_role("row").filter(has_text="failed")).to_have_count(0)
    assert listener.received[1].headers["webhook-id"] == listener.received[2].headers["webhook-id"]

    # Rotate: a new secret, shown once; both sign during the overlap.
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_text("Secret rotated")).to_be_visible()
    new_secret = page.get_by_label(re.compile("Signing secret for")).input_value()
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    expect(page.get_by_text("two signatures")).to_be_visible()
    page.get_by_role("link", name=re.compile("back to the endpoint")).click()
    page.get_by_role("button", name="Send test event").click()
    deliver_pending()
    assert verified(secret, listener.received[-1])["type"] == "webhook.test"
    assert verified(new_secret, listener.received[-1])["type"] == "webhook.test"

    # Disable it.
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_test_id("endpoint-status")).to_have_text("disabled")
    endpoint_url = page.url

    # Charlie, of another organization, cannot open it.
    other = browsing.new_page()
    log_in(other, charlie.email, PASSWORD)
    assert other.goto(endpoint_url).status == 404
    other.goto("/webhooks/")
    expect(other.get_by_text("No endpoints yet")).to_be_visible()
    assert browsing.csp_violations == []
