from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_revoke_asks_for_confirmation_then_revokes(client: Any, alice: Any, alice_app: Any) -> None:
    from portal.keys import services

    key = services.api_key_issue(application=alice_app, actor=alice).key
    client.force_login(alice)
    confirm = client.get(f"/applications/{alice_app.pk}/keys/{key.pk}/revoke/")
    assert "cannot be brought back" in confirm.content.decode()
    key.refresh_from_db()
    assert key.status == "active"

    response = client.post(f"/applications/{alice_app.pk}/keys/{key.pk}/revoke/", follow=True)
    assert f"Key {key.prefix}… revoked." in response.content.decode()
    key.refresh_from_db()
    assert key.status == "revoked"
