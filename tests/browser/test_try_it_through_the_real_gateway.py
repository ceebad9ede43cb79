"""Acceptance for CORS: a developer opens the API reference, picks the key created in
this tab, presses Execute, and Chromium shows the upstream's 200 with the RateLimit
headers. Everything is real: ``python -m gateway`` (which answers the browser's
preflight itself, for the portal's origin) and the echo upstream behind it, with state
published by the portal into the suite's Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, create_key_and_try_it, log_in
from tests.browser.test_try_it import OPENAPI
from tests.conftest import PASSWORD
from tests.gateway.conftest import Echo, GatewayProcess, start_echo

pytestmark = pytest.mark.browser


@pytest.fixture
def echo_upstream() -> Iterator[Echo]:
    upstream = start_echo()
    yield upstream
    upstream.proc.terminate()
    upstream.proc.wait(timeout=10)


@pytest.fixture
def real_gateway(
    settings: Any, live_server: Any, tmp_path: Path, echo_api: Any, olivia: Any, alice_app: Any, alice: Any,
    free_plan: Any, echo_upstream: Echo,
) -> Iterator[GatewayProcess]:
    from portal.catalog import services as catalog
    from portal.plans import services as plans

    gateway = GatewayProcess(
        redis_url=os.environ["REDIS_URL"],
        tmp=tmp_path,
        env={"GATEWAY_KEY_HASH_SECRET": os.environ["TOLLWAY_KEY_HASH_SECRET"]},
    )
    settings.GATEWAY_PUBLIC_URL = gateway.url
    settings.PORTAL_PUBLIC_URL = live_server.url  # the origin the browser's requests carry
    policy = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = {
        **policy, "DIRECTIVES": {**policy["DIRECTIVES"], "connect-src": ["'self'", gateway.url]}
    }
    v2 = echo_api.versions.get(label="v2")
    catalog.version_update(
        version=v2, actor=olivia, openapi=OPENAPI, upstreams=[{"url": echo_upstream.url, "weight": 1}]
    )
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    call_command("gateway_sync")  # everything, with the settings above, before the gateway starts
    gateway.start()
    yield gateway
    gateway.stop()


def test_execute_shows_the_upstreams_200_with_the_rate_limit_headers(
    browsing: Browsing, alice: Any, alice_app: Any, real_gateway: GatewayProcess, echo_upstream: Echo
) -> None:
    page = browsing.new_page()
    log_in(page, alice.email, PASSWORD)
    create_key_and_try_it(page, alice_app.pk, "/apis/echo/v2/reference/")

    responses = page.locator(".live-responses-table")
    expect(responses).to_contain_text("200")
    # Swagger UI lists the response headers the browser let it read: the exposed ones.
    expect(responses).to_contain_text("ratelimit-policy")
    expect(responses).to_contain_text("x-ratelimit-remaining")
    expect(responses).to_contain_text('"path": "/echo"')
    assert echo_upstream.served() == 1  # the preflight was answered by the gateway, not forwarded
    assert browsing.csp_violations == []
    assert not [e for e in browsing.console_errors if "CORS" in e]
