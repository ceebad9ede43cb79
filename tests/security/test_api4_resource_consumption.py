"""API4 Unrestricted resource consumption, on the portal's side: a page of the REST API
holds at most 200 objects (a larger page_size is a 400), bodies over Django's 2.5 MB are
refused, and oversized or odd paging input is a 4xx, never a 5xx. (The gateway's side:
rate limits and quotas, tests/gateway/test_it_admits_exactly_the_limit.py,
test_it_sends_rate_limit_headers.py, test_it_admits_exactly_one_at_the_quota_edge.py;
request body and header limits, test_it_refuses_oversized_requests_before_the_upstream.py;
upstream response limits, tests/security/test_api10_unsafe_consumption.py.)"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]
MAX_PAGE = 200


@pytest.fixture
def many_applications(acme):
    from portal.keys.models import Application

    Application.objects.bulk_create(Application(organization=acme, name=f"app {n:04d}") for n in range(MAX_PAGE + 50))


def test_a_page_never_holds_more_than_the_maximum(client, alice, many_applications):
    client.force_login(alice)

    largest = client.get("/api/v1/applications/", {"page_size": MAX_PAGE})
    too_large = client.get("/api/v1/applications/", {"page_size": MAX_PAGE + 1})
    huge = client.get("/api/v1/applications/", {"page_size": 10**9})
    default = client.get("/api/v1/applications/")

    assert largest.status_code == 200
    assert len(largest.json()["results"]) == MAX_PAGE
    assert largest.json()["next"]
    for refused in (too_large, huge):
        assert refused.status_code == 400
        assert "page_size" in refused.json()["error"]["fields"]
    assert len(default.json()["results"]) == settings.REST_FRAMEWORK["PAGE_SIZE"]


@pytest.mark.parametrize("params", [
    {"page_size": "-1"}, {"page_size": "0"}, {"page_size": "abc"}, {"page": "999999"}, {"page": "-1"},
    {"page": "1e9"}, {"page_size": "9" * 400}, {"ordering": "-" * 200},
])
def test_odd_paging_is_a_4xx_or_a_bounded_page(client, alice, many_applications, params):
    client.force_login(alice)

    response = client.get("/api/v1/applications/", params)

    assert response.status_code < 500
    if response.status_code == 200:
        assert len(response.json()["results"]) <= MAX_PAGE


def test_a_body_over_the_upload_limit_is_refused(client, alice, acme):
    from portal.keys.models import Application

    client.force_login(alice)
    body = json.dumps({"organization": acme.pk, "name": "big", "description": "x" * (3 * 1024 * 1024)})

    response = client.post("/api/v1/applications/", body, content_type="application/json")

    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert 400 <= response.status_code < 500
    assert not Application.objects.filter(name="big").exists()


def test_long_fields_are_refused_not_stored(client, alice, acme):
    client.force_login(alice)

    response = client.post("/api/v1/applications/",
                           json.dumps({"organization": acme.pk, "name": "n" * 10_000, "description": "ok"}),
                           content_type="application/json")

    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]
