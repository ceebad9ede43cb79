from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(alice: Any, alice_app: Any) -> Any:
    from portal.keys import services

    return services.api_key_issue(application=alice_app, label="web", actor=alice).key


def test_rotate_offers_a_grace_period(client: Any, alice: Any, alice_app: Any, key: Any) -> None:
    client.force_login(alice)
    body = client.get(f"/applications/{alice_app.pk}/keys/{key.pk}/rotate/").content.decode()
    assert "Grace period" in body
    assert "7 days" in body


def test_rotating_shows_the_new_secret_and_keeps_the_old_key_for_the_grace(
    client: Any, alice: Any, alice_app: Any, key: Any
) -> None:
    client.force_login(alice)
    response = client.post(
        f"/applications/{alice_app.pk}/keys/{key.pk}/rotate/", {"once": "r1", "grace_seconds": "86400"}
    )
    assert response.status_code == 200
    assert response.context["secret"].startswith("tw_")
    key.refresh_from_db()
    assert key.effective_status == "rotating"
    assert abs(key.grace_until - (timezone.now() + dt.timedelta(days=1))) < dt.timedelta(minutes=1)
    assert "keeps working until" in response.content.decode()


def test_a_grace_outside_the_choices_is_a_form_error(client: Any, alice: Any, alice_app: Any, key: Any) -> None:
    client.force_login(alice)
    response = client.post(
        f"/applications/{alice_app.pk}/keys/{key.pk}/rotate/", {"once": "r2", "grace_seconds": "99999999"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["grace_seconds"]
    key.refresh_from_db()
    assert key.effective_status == "active"


def test_a_revoked_key_cannot_be_rotated_and_the_page_says_why(
    client: Any, alice: Any, alice_app: Any, key: Any
) -> None:
    from portal.keys import services

    services.api_key_revoke(key=key, actor=alice)
    client.force_login(alice)
    response = client.post(
        f"/applications/{alice_app.pk}/keys/{key.pk}/rotate/", {"once": "r3", "grace_seconds": "0"}, follow=True
    )
    assert "Only an active key can be rotated; this key is revoked." in response.content.decode()
