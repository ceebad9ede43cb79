"""400, 403, 404 and 500 are the portal's own styled pages and never show internals
(tracebacks, settings, URL patterns)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

INTERNALS = ("Traceback", "SECRET_INTERNAL_DETAIL", "settings.py", "urlpatterns", "URLconf", "Django tried",
             "DisallowedHost", "Invalid HTTP_HOST")


def _styled_and_silent(response, status: int, heading: str) -> None:
    html = response.content.decode()
    assert response.status_code == status
    assert "portal/portal.css" in html  # the portal's own page, not Django's plain one
    assert f"<h1>{heading}</h1>" in html
    for leak in INTERNALS:
        assert leak not in html, leak


def test_400(client, settings):
    settings.DEBUG = False
    _styled_and_silent(client.get("/", HTTP_HOST="evil.example"), 400, "Bad request")


def test_403(client, alice, settings):
    client.force_login(alice)  # a developer, not finance
    _styled_and_silent(client.get("/analytics/billing/"), 403, "Not allowed")


@pytest.mark.parametrize("debug", [False, True])
def test_404(client, settings, debug):
    settings.DEBUG = debug
    _styled_and_silent(client.get("/apis/echo/v9/no-such-page/"), 404, "Page not found")


@pytest.mark.urls("tests.portal.error_page_urls")
def test_500(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False
    _styled_and_silent(client.get("/boom/"), 500, "Something went wrong")
