from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_the_client_secret_is_shown_once(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    response = client.post(f"/applications/{alice_app.pk}/oauth/new/", {"once": "o1"})
    assert response.status_code == 200
    issued = response.context["issued"]
    assert issued.client_secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    detail = client.get(f"/applications/{alice_app.pk}/").content.decode()
    assert issued.client_id in detail
    assert issued.client_secret not in detail


def test_a_second_client_is_refused_with_a_message(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    client.post(f"/applications/{alice_app.pk}/oauth/new/", {"once": "o1"})
    response = client.post(f"/applications/{alice_app.pk}/oauth/new/", {"once": "o2"}, follow=True)
    assert "already has an OAuth2 client" in response.content.decode()


def test_deleting_the_client_asks_first(client: Any, alice: Any, alice_app: Any) -> None:
    from portal.keys import services

    services.oauth_client_create(application=alice_app, actor=alice)
    client.force_login(alice)
    assert "Delete the OAuth2 client" in client.get(f"/applications/{alice_app.pk}/oauth/delete/").content.decode()
    client.post(f"/applications/{alice_app.pk}/oauth/delete/")
    alice_app.refresh_from_db()
    assert alice_app.oauth_client is None
