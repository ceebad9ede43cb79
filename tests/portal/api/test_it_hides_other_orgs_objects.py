"""Developers see only their organizations' objects: anyone else's answer 404 by id
and never appear in lists. alice (owner) and bob (member) share Acme; charlie is Globex."""

from __future__ import annotations

import pytest

from portal.keys import services as keys
from portal.plans import services as plans
from tests.portal.api.conftest import assert_error_shape


@pytest.fixture
def acme_things(alice, alice_app, free_plan):
    key = keys.api_key_issue(application=alice_app, label="acme", actor=alice).key
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    return {"app": alice_app, "key": key, "subscription": subscription}


@pytest.fixture
def globex_things(charlie, charlie_app, free_plan):
    key = keys.api_key_issue(application=charlie_app, label="globex", actor=charlie).key
    subscription = plans.subscription_create(application=charlie_app, plan=free_plan, actor=charlie)
    return {"app": charlie_app, "key": key, "subscription": subscription}


def _urls(things, org):
    app, key, sub = things["app"], things["key"], things["subscription"]
    return {
        "app": f"/api/v1/applications/{app.pk}/",
        "keys": f"/api/v1/applications/{app.pk}/keys/",
        "key": f"/api/v1/applications/{app.pk}/keys/{key.pk}/",
        "oauth": f"/api/v1/applications/{app.pk}/oauth-client/",
        "subscription": f"/api/v1/subscriptions/{sub.pk}/",
        "overrides": f"/api/v1/subscriptions/{sub.pk}/overrides/",
        "org": f"/api/v1/organizations/{org.pk}/",
        "members": f"/api/v1/organizations/{org.pk}/members/",
        "invitations": f"/api/v1/organizations/{org.pk}/invitations/",
    }


def _listed_ids(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return {item["id"] for item in response.json()["results"]}


@pytest.mark.django_db
@pytest.mark.parametrize("user_name", ["alice", "bob"])
def test_it_shows_acme_members_their_own_objects(request, client_for, acme, acme_things, globex_things, user_name):
    client = client_for(request.getfixturevalue(user_name))

    for name, url in _urls(acme_things, acme).items():
        if name != "oauth":  # alice_app has no OAuth client yet: 404 by design
            assert client.get(url).status_code == 200, name
    assert _listed_ids(client, "/api/v1/applications/") == {acme_things["app"].pk}
    assert _listed_ids(client, "/api/v1/subscriptions/") == {acme_things["subscription"].pk}
    assert _listed_ids(client, "/api/v1/organizations/") == {acme.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("user_name", ["alice", "bob"])
def test_it_hides_globex_objects_from_acme_members(request, client_for, globex, acme_things, globex_things, user_name):
    client = client_for(request.getfixturevalue(user_name))

    for url in _urls(globex_things, globex).values():
        assert_error_shape(client.get(url), 404)
    app = globex_things["app"]
    assert_error_shape(client.patch(f"/api/v1/applications/{app.pk}/", {"name": "pwned"}), 404)
    assert_error_shape(client.delete(f"/api/v1/applications/{app.pk}/"), 404)
    assert_error_shape(client.post(f"/api/v1/applications/{app.pk}/keys/", {"label": "stolen"}), 404)
    key_url = f"/api/v1/applications/{app.pk}/keys/{globex_things['key'].pk}"
    assert_error_shape(client.post(f"{key_url}/revoke/"), 404)
    assert_error_shape(client.post(f"{key_url}/rotate/", {"grace_seconds": 0}), 404)
    assert_error_shape(client.post(f"/api/v1/applications/{app.pk}/oauth-client/"), 404)
    assert_error_shape(client.post(f"/api/v1/subscriptions/{globex_things['subscription'].pk}/cancel/"), 404)
    assert globex_things["app"].pk not in _listed_ids(client, "/api/v1/applications/")
    assert globex_things["subscription"].pk not in _listed_ids(client, "/api/v1/subscriptions/")
    assert globex.pk not in _listed_ids(client, "/api/v1/organizations/")
    # Filtering by the other organization finds nothing rather than leaking it.
    assert _listed_ids(client, f"/api/v1/applications/?organization={globex.pk}") == set()
    globex_things["key"].refresh_from_db()
    app.refresh_from_db()
    assert globex_things["key"].status == "active"
    assert app.name == "Globex Tool"


@pytest.mark.django_db
def test_it_hides_acme_objects_from_charlie(client_for, charlie, acme, acme_things, globex_things):
    client = client_for(charlie)

    for url in _urls(acme_things, acme).values():
        assert_error_shape(client.get(url), 404)
    app, key = acme_things["app"], acme_things["key"]
    assert_error_shape(client.patch(f"/api/v1/applications/{app.pk}/", {"name": "pwned"}), 404)
    assert_error_shape(client.delete(f"/api/v1/applications/{app.pk}/"), 404)
    assert_error_shape(client.post(f"/api/v1/applications/{app.pk}/keys/", {"label": "x"}), 404)
    assert_error_shape(client.post(f"/api/v1/applications/{app.pk}/keys/{key.pk}/revoke/"), 404)
    assert_error_shape(client.post(f"/api/v1/subscriptions/{acme_things['subscription'].pk}/cancel/"), 404)
    members = f"/api/v1/organizations/{acme.pk}/members/"
    assert_error_shape(client.post(f"/api/v1/organizations/{acme.pk}/invitations/", {"email": "c@x.test"}), 404)
    assert_error_shape(client.delete(f"{members}1/"), 404)
    assert _listed_ids(client, "/api/v1/applications/") == {globex_things["app"].pk}
    assert _listed_ids(client, "/api/v1/subscriptions/") == {globex_things["subscription"].pk}
    assert _listed_ids(client, "/api/v1/organizations/") == {charlie.memberships.get().organization_id}
    app.refresh_from_db()
    key.refresh_from_db()
    assert app.name == "Acme Shop"
    assert key.status == "active"


@pytest.mark.django_db
def test_it_rejects_creating_things_in_another_org(client_for, charlie, acme, alice_app, free_plan):
    client = client_for(charlie)

    error = assert_error_shape(client.post("/api/v1/applications/", {"organization": acme.pk, "name": "x"}), 400)
    assert "organization" in error["fields"]
    error = assert_error_shape(
        client.post("/api/v1/subscriptions/", {"application": alice_app.pk, "plan": free_plan.pk}), 400
    )
    assert "application" in error["fields"]
    assert not acme.applications.exclude(pk=alice_app.pk).exists()
    assert not alice_app.subscriptions.exists()
