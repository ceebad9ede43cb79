"""Real-browser fixtures: Debian's Chromium driven by Playwright against pytest-django's
live_server (bound to 127.0.0.1). Never downloads a browser.

On a failing test the current page is saved to test-artifacts/<test>.png. The newcomer
journey also writes one full-page screenshot per page to test-artifacts/journey/, and to
docs/screenshots/ when TOLLWAY_UPDATE_SCREENSHOTS=1 (`make screenshots`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

# Playwright's sync API runs an event loop in this thread; Django would then refuse ORM
# calls from the test body (fixtures, mail checks) as "async unsafe". They are not: the
# loop only drives the browser.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# pytest-django's live_server would bind "localhost"; servers under test bind 127.0.0.1 only.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = os.environ.get("TOLLWAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000


# Module scope, not session: while sync_playwright() is open the main thread has a
# running asyncio loop, so every later test that calls asyncio.run() (the gateway's)
# or starts Playwright again (the end-to-end journeys) would fail in a full run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make test` runs bin/ensure-debs for it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class Browsing:
    """One browser context (cookies, sessionStorage) per person in a test."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.pages: list[Any] = []
        self.csp_violations: list[str] = []
        self.console_errors: list[str] = []

    def new_page(self, viewport: dict[str, int] | None = None, javascript: bool = True) -> Any:
        context = self.browser.new_context(
            base_url=self.base_url, viewport=viewport or DESKTOP, java_script_enabled=javascript
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("console", self._on_console)
        self.pages.append(page)
        return page

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            text = message.text
            self.console_errors.append(text)
            if "Content Security Policy" in text:
                self.csp_violations.append(text)

    def close(self) -> None:
        for page in self.pages:
            page.context.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2 is slow on purpose; these tests are about pages, and the machine is shared.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browsing(browser: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    from django.core.cache import cache

    cache.clear()  # throttle counters and one-time tokens from earlier tests
    session = Browsing(browser, live_server.url)
    yield session
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        for i, page in enumerate(session.pages):
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"screenshot of page {i} failed: {exc}")
    session.close()


def save_journey_screenshot(page: Any, name: str) -> None:
    """Full-page screenshot of one page of a journey (see module docstring)."""
    targets = [ARTIFACTS / "journey"]
    if os.environ.get("TOLLWAY_UPDATE_SCREENSHOTS") == "1":
        targets.append(SCREENSHOTS)
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def log_in(page: Any, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def create_key_and_try_it(page: Any, application_id: int, reference: str) -> str:
    """Create a key on the application page, open the API reference (which offers the key
    from the tab's sessionStorage), use it and press Execute on the first operation.
    Returns the key."""
    page.goto(f"/applications/{application_id}/")
    page.get_by_label("Label").fill("try-it")
    page.get_by_role("button", name="Create key").click()
    secret: str = page.get_by_label(re.compile("API key for Acme Shop")).input_value()

    page.goto(reference)
    expect(page.locator(".swagger-ui .opblock-summary")).to_be_visible()
    expect(page.get_by_label("Full key")).to_have_value(secret)  # from sessionStorage
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text("Key set.")).to_be_visible()
    page.locator(".opblock-summary").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    return secret
