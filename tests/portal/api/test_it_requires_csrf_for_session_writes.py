"""A browser session may call the API, but a write needs the CSRF token; a bearer
token needs none (it cannot be sent by a third-party page)."""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.portal.api.conftest import PASSWORD_FOR_LOGIN, assert_error_shape


@pytest.mark.django_db
def test_it_refuses_a_session_write_without_the_csrf_token(alice, alice_app):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.get("/api/v1/applications/").status_code == 200
    error = assert_error_shape(client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "x"}), 403)

    assert "CSRF" in error["message"]
    assert not alice_app.keys.exists()


@pytest.mark.django_db
def test_it_accepts_a_session_write_with_the_csrf_token(alice, alice_app):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(email=alice.email, password=PASSWORD_FOR_LOGIN)
    # What the browser holds after any portal page: the cookie, echoed in the header.
    token = secrets.token_hex(16)
    client.cookies[settings.CSRF_COOKIE_NAME] = token

    response = client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "x"}, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201


@pytest.mark.django_db
def test_it_needs_no_csrf_token_with_a_bearer_token(bearer_for, alice, alice_app):
    client = bearer_for(alice)
    client.handler.enforce_csrf_checks = True

    assert client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "x"}).status_code == 201
