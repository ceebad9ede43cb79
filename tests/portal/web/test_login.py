from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_logs_in_by_email_in_any_case(client: Any, alice: Any) -> None:
    response = client.post("/accounts/login/", {"username": "Alice@ACME.test", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_it_says_the_credentials_are_wrong_without_saying_which(client: Any, alice: Any) -> None:
    response = client.post("/accounts/login/", {"username": alice.email, "password": "wrong"})
    assert response.status_code == 200
    assert "Email or password is not correct." in response.content.decode()


def test_it_throttles_attempts_even_with_the_right_password(client: Any, alice: Any, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "3/min"}}
    for _ in range(3):
        client.post("/accounts/login/", {"username": alice.email, "password": "wrong"})
    response = client.post("/accounts/login/", {"username": alice.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post(client: Any, alice: Any) -> None:
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_pages_of_the_dashboard_send_anonymous_visitors_to_login(client: Any) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/"
