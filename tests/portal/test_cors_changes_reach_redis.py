"""A version's allowed methods and CORS policy reach its route record, with the portal's
own origin (PORTAL_PUBLIC_URL) always allowed so that try-it works."""

from __future__ import annotations

import pytest

from gateway import contract
from portal.catalog import services as catalog


def _route(redis_client, version) -> contract.RouteRecord:
    raw = redis_client.hget(contract.ROUTES_KEY, contract.route_field(version.api.slug, version.label))
    assert raw is not None
    return contract.RouteRecord.from_json(raw)


@pytest.mark.django_db
def test_it_publishes_methods_and_cors_with_the_portal_origin(
    olivia, echo_api, redis_client, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_PUBLIC_URL = "https://portal.example.com/some/page"
    v2 = echo_api.versions.get(label="v2")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.version_update(
            version=v2,
            actor=olivia,
            allowed_methods=["GET", "POST"],
            cors_allowed_origins=["https://app.example.com"],
            cors_max_age_s=60,
            cors_allow_credentials=True,
        )

    route = _route(redis_client, v2)
    assert route.allowed_methods == ("GET", "POST")
    assert route.cors.allowed_origins == ("https://portal.example.com", "https://app.example.com")
    assert route.cors.allowed_methods == ("GET", "POST")  # empty CORS list: every allowed method
    assert route.cors.max_age_s == 60
    assert route.cors.allow_credentials is True
    assert "RateLimit-Policy" in route.cors.exposed_headers


@pytest.mark.django_db
def test_switching_cors_off_keeps_only_the_portal_origin(
    olivia, echo_api, redis_client, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_PUBLIC_URL = "http://127.0.0.1:8000"
    v2 = echo_api.versions.get(label="v2")
    catalog.version_update(version=v2, actor=olivia, cors_allowed_origins=["https://app.example.com"])
    with django_capture_on_commit_callbacks(execute=True):
        catalog.version_update(version=v2, actor=olivia, cors_enabled=False)

    assert _route(redis_client, v2).cors.allowed_origins == ("http://127.0.0.1:8000",)


@pytest.mark.django_db
def test_a_new_version_gets_the_default_methods(olivia, echo_api, redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        v3 = catalog.version_create(api=echo_api, label="v3", upstreams=[{"url": "http://10.0.0.9"}], actor=olivia)
    route = _route(redis_client, v3)
    assert route.allowed_methods == contract.DEFAULT_ALLOWED_METHODS
    assert "TRACE" not in route.allowed_methods


@pytest.mark.django_db
def test_the_portal_origin_is_published_as_a_browser_sends_it(
    olivia, echo_api, redis_client, settings, django_capture_on_commit_callbacks
):
    # A browser never sends the default port, nor upper case: the published origin must match its Origin.
    settings.PORTAL_PUBLIC_URL = "https://Portal.Example.com:443/"
    v2 = echo_api.versions.get(label="v2")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.version_update(version=v2, actor=olivia, cors_max_age_s=30)

    assert _route(redis_client, v2).cors.allowed_origins[0] == "https://portal.example.com"
