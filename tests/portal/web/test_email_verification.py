from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def dana(client: Any) -> Any:
    from portal.accounts.services import user_signup

    return user_signup(email="dana@example.test", password=PASSWORD, base_url="http://testserver")


def test_it_cannot_log_in_before_verifying(client: Any, dana: Any) -> None:
    response = client.post("/accounts/login/", {"username": dana.email, "password": PASSWORD})
    assert response.status_code == 200
    assert "Confirm your email address first" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_emailed_link_verifies_then_login_works(client: Any, dana: Any) -> None:
    from portal.accounts.services import email_verification_token

    response = client.get(f"/accounts/verify/{email_verification_token(dana)}/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "Your email address is confirmed" in response.content.decode()
    dana.refresh_from_db()
    assert dana.email_verified
    response = client.post("/accounts/login/", {"username": dana.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


@pytest.mark.parametrize("token", ["garbage", "a:b:c", "x" * 300])
def test_a_bad_link_gets_a_friendly_page(client: Any, dana: Any, token: str) -> None:
    response = client.get(f"/accounts/verify/{token}/")
    assert response.status_code == 200  # not 4xx: Django would log the path, which holds the token
    assert "not valid" in response.content.decode()
    dana.refresh_from_db()
    assert not dana.email_verified


def test_resend_answers_the_same_for_unknown_addresses(client: Any, dana: Any, mailoutbox: Any) -> None:
    known = client.post("/accounts/verify/resend/", {"email": dana.email}, follow=True)
    unknown = client.post("/accounts/verify/resend/", {"email": "nobody@example.test"}, follow=True)
    assert known.status_code == unknown.status_code == 200
    message = "If that address has an unconfirmed account"
    assert message in known.content.decode()
    assert message in unknown.content.decode()
    # Only the resend: the sign-up's own email waits for a commit the test never makes.
    assert [m.to for m in mailoutbox] == [[dana.email]]
