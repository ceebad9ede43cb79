from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _signup(client: Any, email: str = "dana@example.test", password: str = PASSWORD, **extra: str) -> Any:
    return client.post("/accounts/signup/", {"email": email, "password": password, **extra})


def test_it_creates_an_unverified_account_and_emails_the_link(
    client: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from portal.accounts.models import Membership, User

    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client, organization_name="Dana Labs")
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    user = User.objects.get(email="dana@example.test")
    assert not user.email_verified
    assert Membership.objects.get(user=user).organization.name == "Dana Labs"
    assert len(mailoutbox) == 1
    assert "http://testserver/accounts/verify/" in mailoutbox[0].body


def test_it_shows_a_weak_password_error_next_to_the_field(client: Any) -> None:
    response = _signup(client, password="12345678")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["password"]
    assert "Choose a stronger password." in form.non_field_errors()


def test_it_rejects_an_email_already_registered(client: Any, alice: Any) -> None:
    response = _signup(client, email="ALICE@acme.test")
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Already registered."]


def test_it_rejects_an_invalid_email_without_calling_the_service(client: Any, mailoutbox: Any) -> None:
    response = _signup(client, email="not-an-email")
    assert response.context["form"].errors["email"]
    assert mailoutbox == []


def test_it_throttles_signups_per_address(client: Any, settings: Any) -> None:
    from portal.accounts.models import User

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "signup": "2/hour"}}
    assert _signup(client, email="a@example.test").status_code == 200
    assert _signup(client, email="b@example.test").status_code == 200
    response = _signup(client, email="c@example.test")
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert not User.objects.filter(email="c@example.test").exists()
