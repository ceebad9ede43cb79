from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_a_friendly_404_that_leaks_nothing(client: Any, alice: Any) -> None:
    client.force_login(alice)
    response = client.get("/applications/999999/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert 'href="/dashboard/"' in body  # a way back
    for leak in ("Traceback", "urlpatterns", "No Application matches", "DEBUG"):
        assert leak not in body


def test_the_404_page_has_the_layout_and_no_inline_code(client: Any) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert 'class="skip-link"' in body
    assert "<script>" not in body
