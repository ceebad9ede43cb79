"""The full key is in the response that creates it (issue or rotate) and nowhere else:
not in lists, details, later responses, nor the database. The same for OAuth client secrets."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from gateway import contract
from portal.keys.models import ApiKey


def _everything_alice_can_read(client, app):
    urls = [
        "/api/v1/applications/",
        f"/api/v1/applications/{app.pk}/",
        f"/api/v1/applications/{app.pk}/keys/",
        *[f"/api/v1/applications/{app.pk}/keys/{pk}/" for pk in app.keys.values_list("pk", flat=True)],
        f"/api/v1/applications/{app.pk}/oauth-client/",
    ]
    return "\n".join(client.get(url).content.decode() for url in urls)


@pytest.mark.django_db
def test_it_returns_the_secret_only_when_creating_a_key(client_for, alice, alice_app):
    client = client_for(alice)

    response = client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "ci"})

    assert response.status_code == 201
    body = response.json()
    secret = body["secret"]
    assert contract.key_is_well_formed(secret)
    assert secret.startswith(body["prefix"])
    key = ApiKey.objects.get(pk=body["id"])
    assert key.key_hash == contract.key_hash(secret, settings.KEY_HASH_SECRET)
    assert secret not in json.dumps([getattr(key, f.attname) for f in ApiKey._meta.concrete_fields], default=str)
    listed = client.get(f"/api/v1/applications/{alice_app.pk}/keys/").json()["results"]
    assert [item["id"] for item in listed] == [key.pk]
    assert "secret" not in listed[0]
    assert "key_hash" not in listed[0]
    detail = client.get(f"/api/v1/applications/{alice_app.pk}/keys/{key.pk}/").json()
    assert "secret" not in detail
    assert detail["prefix"] == body["prefix"]
    assert secret not in _everything_alice_can_read(client, alice_app)


@pytest.mark.django_db
def test_it_returns_the_new_secret_once_when_rotating(client_for, alice, alice_app):
    client = client_for(alice)
    old = client.post(f"/api/v1/applications/{alice_app.pk}/keys/", {"label": "ci"}).json()

    response = client.post(f"/api/v1/applications/{alice_app.pk}/keys/{old['id']}/rotate/", {"grace_seconds": 3600})

    assert response.status_code == 201
    body = response.json()
    new_secret = body["key"]["secret"]
    assert contract.key_is_well_formed(new_secret)
    assert new_secret != old["secret"]
    assert body["key"]["label"] == "ci"
    assert "secret" not in body["previous"]
    assert body["previous"]["id"] == old["id"]
    assert body["previous"]["status"] == "rotating"
    assert body["previous"]["replaced_by"] == body["key"]["id"]
    assert old["secret"] not in response.content.decode()
    everything = _everything_alice_can_read(client, alice_app)
    assert new_secret not in everything
    assert old["secret"] not in everything


@pytest.mark.django_db
def test_it_returns_the_oauth_client_secret_once(client_for, alice, alice_app):
    client = client_for(alice)
    url = f"/api/v1/applications/{alice_app.pk}/oauth-client/"

    created = client.post(url)

    assert created.status_code == 201
    client_secret = created.json()["client_secret"]
    assert len(client_secret) >= 32
    shown = client.get(url)
    assert shown.status_code == 200
    assert shown.json() == {"client_id": created.json()["client_id"]}
    assert client_secret not in _everything_alice_can_read(client, alice_app)
    assert client.post(url).status_code == 409  # one client per application; delete to replace
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
