"""CSP that the pages satisfy (no inline script or style), CSRF on every form."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+=", re.IGNORECASE)


def _pages(alice_app: Any) -> list[str]:
    return [
        "/",
        "/apis/echo/",
        "/apis/echo/v2/",
        "/apis/echo/v2/reference/",
        "/dashboard/",
        f"/applications/{alice_app.pk}/",
        f"/applications/{alice_app.pk}/edit/",
        "/applications/new/",
        "/subscriptions/new/",
        "/accounts/profile/",
        "/organizations/acme/",
    ]


def test_pages_send_a_strict_csp_and_have_no_inline_code(client: Any, alice: Any, alice_app: Any, echo_api: Any):
    client.force_login(alice)
    for url in _pages(alice_app):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        body = response.content.decode()
        assert not INLINE_SCRIPT.search(body), url
        assert not INLINE_STYLE.search(body), url
        assert not EVENT_HANDLER.search(body), url


def test_public_pages_have_no_inline_code_either(client: Any, echo_api: Any) -> None:
    for url in ["/", "/apis/echo/", "/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"]:
        body = client.get(url).content.decode()
        assert not INLINE_SCRIPT.search(body), url
        assert not INLINE_STYLE.search(body), url


def test_forms_refuse_a_post_without_the_csrf_token(alice: Any, alice_app: Any) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get(f"/applications/{alice_app.pk}/")
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    for url, data in [
        (f"/applications/{alice_app.pk}/keys/new/", {"once": "a", "label": "x"}),
        (f"/applications/{alice_app.pk}/delete/", {}),
        ("/accounts/logout/", {}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "This form has expired" in response.content.decode()
    assert alice_app.keys.count() == 0


def test_every_post_form_carries_the_csrf_token(client: Any, alice: Any, alice_app: Any, echo_api: Any) -> None:
    client.force_login(alice)
    for url in _pages(alice_app):
        body = client.get(url).content.decode()
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", body, re.DOTALL | re.IGNORECASE)
        for form in forms:
            assert 'name="csrfmiddlewaretoken"' in form, url
