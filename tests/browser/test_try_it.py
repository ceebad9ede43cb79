"""The API reference's try-it sends a real request through "the gateway" with the key
the developer just created, remembered only in the tab's sessionStorage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, create_key_and_try_it, log_in, save_journey_screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Echo", "version": "2"},
    "paths": {
        "/echo": {
            "get": {
                "summary": "Echo the request",
                "responses": {"200": {"description": "The request, echoed"}},
            }
        }
    },
}


class FakeGateway(BaseHTTPRequestHandler):
    """Stands in for gateway/ (a separate process): answers CORS and records headers."""

    seen: list[dict[str, str]] = []

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
        self.send_header("Access-Control-Allow-Headers", "X-API-Key, Accept")
        self.send_header("Access-Control-Allow-Methods", "GET, OPTIONS")

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self._cors()
        self.end_headers()

    def do_GET(self) -> None:
        FakeGateway.seen.append({"path": self.path, "key": self.headers.get("X-API-Key", "")})
        body = json.dumps({"echo": self.path}).encode()
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_gateway(settings: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeGateway.seen = []
    settings.GATEWAY_PUBLIC_URL = url
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = {
        **policy, "DIRECTIVES": {**policy["DIRECTIVES"], "connect-src": ["'self'", url]}
    }
    yield url
    server.shutdown()
    server.server_close()


def test_try_it_calls_the_gateway_with_the_key_created_in_this_tab(
    browsing: Browsing, alice: Any, alice_app: Any, echo_api: Any, olivia: Any, fake_gateway: str
) -> None:
    from portal.catalog import services

    services.version_update(version=echo_api.versions.get(label="v2"), actor=olivia, openapi=OPENAPI)
    page = browsing.new_page()
    log_in(page, alice.email, PASSWORD)

    secret = create_key_and_try_it(page, alice_app.pk, "/apis/echo/v2/reference/")
    expect(page.locator(".live-responses-table")).to_contain_text("200")
    assert FakeGateway.seen == [{"path": "/echo/v2/echo", "key": secret}]
    assert browsing.csp_violations == []
    save_journey_screenshot(page, "11-api-reference-try-it")


def test_a_key_from_another_tab_must_be_pasted(
    browsing: Browsing, alice: Any, alice_app: Any, echo_api: Any, olivia: Any, fake_gateway: str
) -> None:
    from portal.catalog import services
    from portal.keys import services as keys

    services.version_update(version=echo_api.versions.get(label="v2"), actor=olivia, openapi=OPENAPI)
    issued = keys.api_key_issue(application=alice_app, label="elsewhere", actor=alice)
    page = browsing.new_page()
    log_in(page, alice.email, PASSWORD)
    page.goto("/apis/echo/v2/reference/")
    expect(page.locator(".swagger-ui .opblock-summary")).to_be_visible()
    expect(page.get_by_label("Your key", exact=True)).to_contain_text(issued.key.prefix)
    expect(page.get_by_label("Full key")).to_have_value("")
    page.get_by_label("Full key").fill("tw_notthatkey")
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text(f"does not start with {issued.key.prefix}")).to_be_visible()
    page.get_by_label("Full key").fill(issued.secret)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text("Key set.")).to_be_visible()
