"""API9 Improper inventory management: only published and deprecated versions answer.
What the portal publishes, a real gateway enforces: a draft is 404 and a retired version
410 before any credential check or upstream contact, and developers do not see drafts in
the portal's catalog, pages or REST API."""

from __future__ import annotations

import os

import httpx
import pytest

from portal.catalog import services as catalog
from portal.gateway_state import publish
from portal.keys import services as keys
from portal.plans import services as plans

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(olivia, alice, alice_app, upstream, redis_client):
    """API "inv": v1 retired (successor v2), v2 published, v3 a draft; alice subscribed with a key."""
    api = catalog.api_create(actor=olivia, slug="inv", name="Inventory", summary="", tags=[])
    upstreams = [{"url": upstream.url, "weight": 1}]
    v1, v2, _v3 = (catalog.version_create(api=api, label=label, upstreams=upstreams, actor=olivia)
                  for label in ("v1", "v2", "v3"))
    for version in (v1, v2):
        catalog.version_transition(version=version, to_state="published", actor=olivia)
    catalog.version_transition(version=v1, to_state="deprecated", actor=olivia, successor=v2)
    catalog.version_transition(version=v1, to_state="retired", actor=olivia)
    plan = plans.plan_create(actor=olivia, api=api, slug="free", name="Free", rate_per_second=100)
    plans.subscription_create(application=alice_app, plan=plan, actor=alice)
    key = keys.api_key_issue(application=alice_app, label="inv", actor=alice).secret
    publish.outbox_flush()
    return api, key


def test_the_gateway_refuses_drafts_and_retired_versions(inventory, start_gateway, upstream):
    _api, key = inventory
    gateway = start_gateway(redis_url=os.environ["REDIS_URL"],
                            GATEWAY_KEY_HASH_SECRET=os.environ["TOLLWAY_KEY_HASH_SECRET"])
    headers = {"X-API-Key": key}

    published = httpx.get(f"{gateway.url}/inv/v2/ping", headers=headers)
    served = upstream.served()
    draft = httpx.get(f"{gateway.url}/inv/v3/ping", headers=headers)
    retired = httpx.get(f"{gateway.url}/inv/v1/ping", headers=headers)
    unknown = httpx.get(f"{gateway.url}/inv/v9/ping", headers=headers)
    anonymous_draft = httpx.get(f"{gateway.url}/inv/v3/ping")

    assert published.status_code == 200, published.text
    assert (draft.status_code, draft.json()["type"].rsplit("/", 1)[1]) == (404, "version-not-published")
    assert (retired.status_code, retired.json()["type"].rsplit("/", 1)[1]) == (410, "version-retired")
    assert "Use v2" in retired.json()["detail"]
    assert (unknown.status_code, unknown.json()["type"].rsplit("/", 1)[1]) == (404, "unknown-version")
    assert anonymous_draft.status_code == 404  # lifecycle comes before authentication
    assert upstream.served() == served  # none of the refusals reached the upstream


def test_developers_do_not_see_drafts(inventory, client, alice):
    api, _ = inventory
    client.force_login(alice)

    listed = client.get("/api/v1/apis/").json()["results"]
    versions = client.get(f"/api/v1/apis/{api.pk}/versions/").json()["results"]
    draft_id = api.versions.get(label="v3").pk

    labels = {v["label"] for entry in listed if entry["slug"] == "inv" for v in entry["versions"]}
    assert "v3" not in labels
    assert "v3" not in {v["label"] for v in versions}
    assert client.get(f"/api/v1/apis/{api.pk}/versions/{draft_id}/").status_code == 404
    assert client.get("/apis/inv/v3/").status_code == 404
    assert "v3" not in client.get("/apis/inv/").content.decode()


def test_operators_do_see_drafts(inventory, client, olivia):
    api, _ = inventory
    client.force_login(olivia)

    versions = client.get(f"/api/v1/apis/{api.pk}/versions/").json()["results"]

    assert {v["label"]: v["state"] for v in versions} == {"v1": "retired", "v2": "published", "v3": "draft"}
