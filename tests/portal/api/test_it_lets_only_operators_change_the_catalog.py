"""Developers read the catalog (public APIs, non-draft versions, no upstreams);
operators create and change APIs, versions (with OpenAPI and upstreams), lifecycle and plans."""

from __future__ import annotations

import pytest

from portal.catalog import services as catalog
from portal.catalog.models import ApiVersion
from tests.portal.api.conftest import assert_error_shape

OPENAPI_YAML = """
openapi: 3.0.3
info: {title: Weather, version: "1.0"}
paths:
  /forecast:
    get:
      responses:
        "200": {description: ok}
"""


@pytest.mark.django_db
def test_it_refuses_catalog_writes_from_developers(client_for, alice, echo_api, free_plan):
    client = client_for(alice)
    v2 = echo_api.versions.get(label="v2")
    upstreams = [{"url": "http://127.0.0.1:9", "weight": 1}]

    attempts = [
        client.post("/api/v1/apis/", {"slug": "mine", "name": "Mine"}),
        client.patch(f"/api/v1/apis/{echo_api.pk}/", {"name": "Hijacked"}),
        client.post(f"/api/v1/apis/{echo_api.pk}/versions/", {"label": "v3", "upstreams": upstreams}),
        client.patch(f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/", {"upstreams": upstreams}),
        client.post(f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/transition/", {"to_state": "retired"}),
        client.post("/api/v1/plans/", {"api": echo_api.pk, "slug": "vip", "name": "VIP"}),
        client.patch(f"/api/v1/plans/{free_plan.pk}/", {"quota_per_day": 10**9}),
    ]

    for response in attempts:
        assert_error_shape(response, 403)
    echo_api.refresh_from_db()
    free_plan.refresh_from_db()
    v2.refresh_from_db()
    assert echo_api.name == "Echo"
    assert free_plan.quota_per_day == 1000
    assert v2.state == "published"
    assert [u.url for u in v2.upstreams.all()] == ["http://127.0.0.1:8090"]


@pytest.mark.django_db
def test_it_hides_drafts_private_apis_and_upstreams_from_developers(client_for, alice, olivia, echo_api):
    draft = catalog.version_create(api=echo_api, label="v3", upstreams=[{"url": "http://10.0.0.1"}], actor=olivia)
    private = catalog.api_create(actor=olivia, slug="internal", name="Internal", visibility="private")
    catalog.version_transition(
        version=catalog.version_create(api=private, label="v1", upstreams=[{"url": "http://10.0.0.2"}], actor=olivia),
        to_state="published",
        actor=olivia,
    )
    client = client_for(alice)

    apis = client.get("/api/v1/apis/").json()["results"]
    assert [api["slug"] for api in apis] == ["echo"]
    assert [v["label"] for v in apis[0]["versions"]] == ["v1", "v2"]
    versions = client.get(f"/api/v1/apis/{echo_api.pk}/versions/").json()["results"]
    assert [v["label"] for v in versions] == ["v1", "v2"]
    assert all(v["gateway"] is None for v in versions)
    assert "127.0.0.1:8090" not in client.get(f"/api/v1/apis/{echo_api.pk}/versions/").content.decode()
    assert_error_shape(client.get(f"/api/v1/apis/{echo_api.pk}/versions/{draft.pk}/"), 404)
    assert_error_shape(client.get(f"/api/v1/apis/{private.pk}/"), 404)
    operator = client_for(olivia)
    assert {api["slug"] for api in operator.get("/api/v1/apis/").json()["results"]} == {"echo", "internal"}
    seen = operator.get(f"/api/v1/apis/{echo_api.pk}/versions/{draft.pk}/").json()
    assert seen["gateway"]["upstreams"] == [{"url": "http://10.0.0.1", "weight": 1}]


@pytest.mark.django_db
def test_it_lets_an_operator_build_and_publish_an_api(client_for, olivia, alice):
    client = client_for(olivia)

    api = client.post("/api/v1/apis/", {"slug": "weather", "name": "Weather", "tags": ["geo"]}).json()
    version = client.post(
        f"/api/v1/apis/{api['id']}/versions/",
        {
            "label": "v1",
            "upstreams": [{"url": "http://127.0.0.1:8090", "weight": 3}, {"url": "http://127.0.0.1:8091"}],
            "openapi_text": OPENAPI_YAML,
            "read_timeout_s": 5,
        },
    )
    assert version.status_code == 201, version.content
    version = version.json()
    assert version["state"] == "draft"
    assert version["openapi"]["info"]["title"] == "Weather"
    assert version["gateway"]["upstreams"][0] == {"url": "http://127.0.0.1:8090", "weight": 3}
    assert client_for(alice).get(f"/api/v1/apis/{api['id']}/").status_code == 404  # nothing published yet

    published = client.post(f"/api/v1/apis/{api['id']}/versions/{version['id']}/transition/", {"to_state": "published"})

    assert published.status_code == 200
    assert published.json()["state"] == "published"
    assert client_for(alice).get(f"/api/v1/apis/{api['id']}/").json()["slug"] == "weather"
    plan = client.post(
        "/api/v1/plans/", {"api": api["id"], "slug": "free", "name": "Free", "quota_per_day": 100, "monthly_price": "0"}
    )
    assert plan.status_code == 201, plan.content
    assert [p["slug"] for p in client_for(alice).get(f"/api/v1/apis/{api['id']}/plans/").json()["results"]] == ["free"]
    changed = client.patch(f"/api/v1/plans/{plan.json()['id']}/", {"quota_per_day": 200})
    assert changed.json()["quota_per_day"] == 200


@pytest.mark.django_db
def test_it_deprecates_with_a_sunset_and_refuses_invalid_transitions(client_for, olivia, echo_api):
    client = client_for(olivia)
    v1, v2 = echo_api.versions.get(label="v1"), echo_api.versions.get(label="v2")
    base = f"/api/v1/apis/{echo_api.pk}/versions"

    retired = client.post(f"{base}/{v1.pk}/transition/", {"to_state": "retired"})
    assert retired.json()["state"] == "retired"
    error = assert_error_shape(client.post(f"{base}/{v1.pk}/transition/", {"to_state": "published"}), 409)
    assert error["type"] == "invalid_transition"

    deprecated = client.post(
        f"{base}/{v2.pk}/transition/", {"to_state": "deprecated", "sunset_at": "2099-01-01T00:00:00Z"}
    )
    assert deprecated.status_code == 200
    assert deprecated.json()["sunset_at"].startswith("2099-01-01")
    assert ApiVersion.objects.get(pk=v2.pk).state == "deprecated"


@pytest.mark.django_db
def test_it_rejects_a_bad_openapi_document_or_upstream(client_for, olivia, echo_api):
    client = client_for(olivia)
    url = f"/api/v1/apis/{echo_api.pk}/versions/"
    upstreams = [{"url": "http://127.0.0.1:8090"}]

    bad_yaml = client.post(url, {"label": "v9", "upstreams": upstreams, "openapi_text": "openapi: [unclosed"})
    not_openapi = client.post(url, {"label": "v9", "upstreams": upstreams, "openapi": {"hello": "world"}})
    credentials = client.post(url, {"label": "v9", "upstreams": [{"url": "http://user:pw@10.0.0.1"}]})
    no_upstream = client.post(url, {"label": "v9", "upstreams": []})

    for response in (bad_yaml, not_openapi, credentials, no_upstream):
        assert_error_shape(response, 400)
    assert not echo_api.versions.filter(label="v9").exists()


@pytest.mark.django_db
def test_it_refuses_a_successor_from_another_api(client_for, olivia, echo_api):
    other = catalog.api_create(actor=olivia, slug="other", name="Other")
    foreign = catalog.version_create(api=other, label="v1", upstreams=[{"url": "http://10.0.0.3"}], actor=olivia)
    v1 = echo_api.versions.get(label="v1")

    response = client_for(olivia).patch(f"/api/v1/apis/{echo_api.pk}/versions/{v1.pk}/", {"successor": foreign.pk})

    assert "successor" in assert_error_shape(response, 400)["fields"]
    v1.refresh_from_db()
    assert v1.successor.label == "v2"
