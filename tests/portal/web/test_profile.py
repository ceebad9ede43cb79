from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_it_shows_the_account_and_its_organizations(client: Any, alice: Any) -> None:
    client.force_login(alice)
    body = client.get("/accounts/profile/").content.decode()
    assert alice.email in body
    assert 'href="/organizations/acme/"' in body


def test_it_saves_the_name(client: Any, alice: Any) -> None:
    client.force_login(alice)
    response = client.post("/accounts/profile/", {"first_name": "Alice", "last_name": "Liddell"}, follow=True)
    assert "Profile saved." in response.content.decode()
    alice.refresh_from_db()
    assert (alice.first_name, alice.last_name) == ("Alice", "Liddell")
