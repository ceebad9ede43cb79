"""Bearer tokens from django-oauth-toolkit: "read" for GET, "write" for changes.
A client-credentials token (no user) is for the gateway, not for this API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from tests.portal.api.conftest import assert_error_shape


@pytest.mark.django_db
def test_it_lets_a_read_token_read_but_not_write(bearer_for, alice, alice_app):
    client = bearer_for(alice, scope="read")

    assert client.get("/api/v1/applications/").json()["count"] == 1
    assert_error_shape(client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "x"}), 403)
    assert not alice_app.keys.exists()


@pytest.mark.django_db
def test_it_lets_a_write_token_write_but_not_read(bearer_for, alice, alice_app):
    client = bearer_for(alice, scope="write")

    assert client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "x"}).status_code == 201
    assert_error_shape(client.get("/api/v1/applications/"), 403)


@pytest.mark.django_db
def test_it_scopes_a_token_to_its_users_organizations(bearer_for, charlie, alice_app):
    assert_error_shape(bearer_for(charlie).get(f"/api/v1/applications/{alice_app.pk}/"), 404)


@pytest.mark.django_db
def test_it_rejects_missing_expired_and_userless_tokens(client_for, bearer_for, alice):
    assert_error_shape(client_for(None).get("/api/v1/applications/"), 401)
    bogus = client_for(None)
    bogus.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error_shape(bogus.get("/api/v1/applications/"), 401)

    expired = bearer_for(alice)
    AccessToken.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert_error_shape(expired.get("/api/v1/applications/"), 401)

    machine = bearer_for(None)  # what the client-credentials grant issues
    assert machine.get("/api/v1/applications/").status_code in {401, 403}


@pytest.mark.django_db
def test_it_answers_401_with_a_bearer_challenge(client_for):
    response = client_for(None).get("/api/v1/apis/")

    assert_error_shape(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
