"""Operators set a version's allowed methods and CORS policy through the REST API; bad
values are 400 JSON naming the field, and nothing is saved. Developers see the allowed
methods but not the CORS policy (its origins name customers' apps)."""

from __future__ import annotations

import pytest

from portal.catalog.models import ApiVersion
from tests.portal.api.conftest import assert_error_shape


@pytest.fixture
def v2(echo_api):
    return echo_api.versions.get(label="v2")


@pytest.mark.django_db
def test_it_saves_methods_and_cors_and_shows_them_to_operators(client_for, olivia, alice, echo_api, v2):
    url = f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/"
    response = client_for(olivia).patch(
        url,
        {
            "allowed_methods": ["GET", "POST", "OPTIONS"],
            "cors_allowed_origins": ["https://app.example.com", "http://localhost:3000"],
            "cors_allowed_methods": ["GET"],
            "cors_max_age_s": 300,
            "cors_allow_credentials": True,
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["allowed_methods"] == ["GET", "POST", "OPTIONS"]
    assert body["gateway"]["cors_allowed_origins"] == ["https://app.example.com", "http://localhost:3000"]
    assert body["gateway"]["cors_max_age_s"] == 300
    assert "RateLimit" in body["gateway"]["cors_exposed_headers"]
    seen_by_developer = client_for(alice).get(url).json()
    assert seen_by_developer["allowed_methods"] == ["GET", "POST", "OPTIONS"]
    assert seen_by_developer["gateway"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"allowed_methods": ["GET", "TRACE"]}, "allowed_methods"),
        ({"allowed_methods": ["CONNECT"]}, "allowed_methods"),
        ({"allowed_methods": ["get"]}, "allowed_methods"),
        ({"allowed_methods": []}, "allowed_methods"),
        ({"cors_allowed_origins": ["https://app.example.com/path"]}, "cors_allowed_origins"),
        ({"cors_allowed_origins": ["app.example.com"]}, "cors_allowed_origins"),
        ({"cors_allowed_origins": ["https://App.Example.com"]}, "cors_allowed_origins"),
        ({"cors_allowed_origins": ["*"], "cors_allow_credentials": True}, "cors_allowed_origins"),
        ({"cors_allowed_methods": ["DELETE"], "allowed_methods": ["GET"]}, "cors_allowed_methods"),
        ({"cors_allowed_headers": ["bad header"]}, "cors_allowed_headers"),
        ({"cors_max_age_s": 86401}, "cors_max_age_s"),
        ({"cors_allowed_origins": "https://app.example.com"}, "cors_allowed_origins"),
    ],
)
def test_it_refuses_bad_methods_and_cors_with_400(client_for, olivia, echo_api, v2, changes, field):
    response = client_for(olivia).patch(f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/", changes)

    error = assert_error_shape(response, 400)
    assert field in error["fields"], error
    v2.refresh_from_db()
    assert v2.allowed_methods == ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    assert v2.cors_allowed_origins == []
    assert v2.cors_allow_credentials is False


@pytest.mark.django_db
def test_it_refuses_credentials_when_the_stored_origins_hold_a_wildcard(client_for, olivia, echo_api, v2):
    client = client_for(olivia)
    url = f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/"
    assert client.patch(url, {"cors_allowed_origins": ["*"]}).status_code == 200

    error = assert_error_shape(client.patch(url, {"cors_allow_credentials": True}), 400)

    assert "cors_allowed_origins" in error["fields"]
    assert ApiVersion.objects.get(pk=v2.pk).cors_allow_credentials is False


@pytest.mark.django_db
def test_developers_cannot_change_methods_or_cors(client_for, alice, echo_api, v2):
    response = client_for(alice).patch(
        f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/", {"cors_allowed_origins": ["https://evil.example"]}
    )
    assert response.status_code in (403, 404)
    v2.refresh_from_db()
    assert v2.cors_allowed_origins == []
