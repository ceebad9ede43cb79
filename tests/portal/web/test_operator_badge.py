from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_staff_see_the_operator_badge_and_the_admin_link(client: Any, olivia: Any) -> None:
    client.force_login(olivia)
    body = client.get("/").content.decode()
    assert "badge-operator" in body
    assert 'href="/admin/"' in body


def test_developers_do_not(client: Any, alice: Any) -> None:
    client.force_login(alice)
    body = client.get("/").content.decode()
    assert "badge-operator" not in body
    assert 'href="/admin/"' not in body
