"""Every error is a 4xx with {"error": {"type", "message", ["fields"]}}, whatever raised
it: DRF, django-filter, a domain rule, the URL resolver, a throttle or a bad body."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from portal.keys import services as keys
from tests.portal.api.conftest import assert_error_shape


@pytest.mark.django_db
def test_it_answers_bad_input_with_field_errors(client_for, alice, acme, alice_app):
    client = client_for(alice)

    missing = assert_error_shape(client.post("/api/v1/applications/", {}), 400)
    too_long = assert_error_shape(
        client.post("/api/v1/applications/", {"organization": acme.pk, "name": "x" * 500}), 400
    )
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    grace = assert_error_shape(
        client.post(f"/api/v1/applications/{alice_app.pk}/keys/{key.pk}/rotate/", {"grace_seconds": -1}), 400
    )
    past = assert_error_shape(
        client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"expires_at": "2000-01-01T00:00:00Z"}), 409
    )

    assert {"organization", "name"} <= set(missing["fields"])
    assert "name" in too_long["fields"]
    assert "grace_seconds" in grace["fields"]
    assert "expires_at" in past["fields"]


@pytest.mark.django_db
def test_it_answers_unreadable_bodies_and_queries(client_for, alice, alice_app):
    client = client_for(alice)
    keys = f"/api/v1/applications/{alice_app.pk}/keys/"

    assert_error_shape(client.post(keys, "{not json", content_type="application/json"), 400)
    assert_error_shape(client.post(keys, "[1, 2]", content_type="application/json"), 400)
    assert_error_shape(client.post(keys, "label=x", content_type="application/x-www-form-urlencoded"), 415)
    assert_error_shape(client.get("/api/v1/applications/?page_size=0"), 400)
    assert_error_shape(client.get("/api/v1/applications/?page=abc"), 404)
    assert_error_shape(client.get("/api/v1/applications/?page=99"), 404)
    assert_error_shape(client.get("/api/v1/subscriptions/?status=nonsense"), 400)
    assert_error_shape(client.get("/api/v1/plans/?requires_approval=maybe"), 400)
    assert_error_shape(client.get("/api/v1/applications/", HTTP_ACCEPT="text/csv"), 406)


@pytest.mark.django_db
def test_it_answers_unknown_ids_and_paths_with_json_404(client_for, alice):
    client = client_for(alice)

    for url in [
        "/api/v1/applications/999999/",
        "/api/v1/applications/abc/",
        "/api/v1/applications/1.5/keys/",
        "/api/v1/applications/99999999999999999999999999/",
        "/api/v1/nothing-here/",
        "/api/v1/applications/1/keys/2/3/4/",
    ]:
        assert assert_error_shape(client.get(url), 404)["type"] == "not_found", url


@pytest.mark.django_db
def test_it_answers_auth_permission_method_and_state_errors(client_for, alice, olivia, alice_app, free_plan):
    assert assert_error_shape(client_for(None).get("/api/v1/applications/"), 401)["type"] == "not_authenticated"
    assert assert_error_shape(client_for(alice).get("/api/v1/audit/"), 403)["type"] == "permission_denied"
    assert assert_error_shape(client_for(alice).put(f"/api/v1/applications/{alice_app.pk}/", {}), 405)["type"] == (
        "method_not_allowed"
    )
    subscription = (
        client_for(alice).post("/api/v1/subscriptions/", {"application": alice_app.pk, "plan": free_plan.pk}).json()
    )
    error = assert_error_shape(client_for(olivia).post(f"/api/v1/subscriptions/{subscription['id']}/resume/"), 409)
    assert error["type"] == "invalid_transition"


@pytest.mark.django_db
def test_it_throttles_key_creation(client_for, alice, alice_app):
    cache.clear()
    client = client_for(alice)
    url = f"/api/v1/applications/{alice_app.pk}/keys/"

    statuses = [client.post(url, {"label": str(n)}).status_code for n in range(60)]
    throttled = client.post(url, {"label": "one too many"})

    assert statuses == [201] * 60  # THROTTLE_KEY_CREATE defaults to 60/hour
    assert assert_error_shape(throttled, 429)["type"] == "throttled"
    assert "Retry-After" in throttled
    assert alice_app.keys.count() == 60
    assert client.get(url).status_code == 200  # reading is not throttled
