from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _invite(alice: Any, email: str, mailoutbox: Any, capture: Any) -> str:
    from portal.accounts.models import Organization
    from portal.accounts.services import invitation_create

    with capture(execute=True):
        invitation_create(
            organization=Organization.objects.get(slug="acme"), email=email, role="member", actor=alice,
            base_url="http://testserver",
        )
    match = re.search(r"http://testserver(/accounts/invitations/\S+/)", mailoutbox[-1].body)
    assert match is not None
    return match.group(1)


def test_the_invited_person_joins(client: Any, alice: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any):
    from portal.accounts.models import Membership, User

    erin = User.objects.create_user(email="erin@example.test", password=PASSWORD, email_verified=True)
    path = _invite(alice, erin.email, mailoutbox, django_capture_on_commit_callbacks)
    client.force_login(erin)
    assert "Accept invitation" in client.get(path).content.decode()
    response = client.post(path, follow=True)
    assert "You joined Acme." in response.content.decode()
    assert Membership.objects.get(user=erin).organization.slug == "acme"


def test_someone_else_cannot_use_the_link(
    client: Any, alice: Any, charlie: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from portal.accounts.models import Membership

    path = _invite(alice, "erin@example.test", mailoutbox, django_capture_on_commit_callbacks)
    client.force_login(charlie)
    response = client.post(path)
    assert response.status_code == 200  # not 4xx: Django would log the path, which holds the token
    assert "another email address" in response.content.decode()
    assert not Membership.objects.filter(user=charlie, organization__slug="acme").exists()


def test_a_bad_token_is_a_friendly_error(client: Any, charlie: Any) -> None:
    client.force_login(charlie)
    response = client.post("/accounts/invitations/not-a-token/")
    assert response.status_code == 200
    assert "not valid or has expired" in response.content.decode()
