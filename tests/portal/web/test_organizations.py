from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_it_creates_an_organization_owned_by_its_creator(client: Any, charlie: Any) -> None:
    from portal.accounts.models import Membership

    client.force_login(charlie)
    response = client.post("/organizations/new/", {"name": "Initech"}, follow=True)
    assert "Organization “Initech” created" in response.content.decode()
    assert Membership.objects.get(user=charlie, organization__name="Initech").role == "owner"


def test_a_blank_name_is_an_error_next_to_the_field(client: Any, charlie: Any) -> None:
    client.force_login(charlie)
    response = client.post("/organizations/new/", {"name": "   "})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]


def test_an_owner_invites_by_email(client: Any, alice: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/organizations/acme/invite/", {"email": "erin@example.test", "role": "member"})
    assert response.status_code == 302
    assert mailoutbox[0].to == ["erin@example.test"]
    assert "/accounts/invitations/" in mailoutbox[0].body


def test_a_member_cannot_invite_and_is_told_why(client: Any, alice: Any, bob: Any) -> None:
    from portal.accounts.models import Invitation

    client.force_login(bob)
    response = client.post("/organizations/acme/invite/", {"email": "erin@example.test", "role": "member"}, follow=True)
    assert "Only the organization&#x27;s owners and admins can do this." in response.content.decode()
    assert not Invitation.objects.exists()


def test_an_owner_changes_a_role(client: Any, alice: Any, bob: Any) -> None:
    from portal.accounts.models import Membership

    membership = Membership.objects.get(user=bob)
    client.force_login(alice)
    response = client.post(f"/organizations/acme/members/{membership.pk}/role/", {f"m{membership.pk}-role": "admin"},
                           follow=True)
    assert "bob@acme.test is now admin." in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "admin"


def test_a_member_leaves_after_confirming(client: Any, alice: Any, bob: Any) -> None:
    from portal.accounts.models import Membership

    membership = Membership.objects.get(user=bob)
    client.force_login(bob)
    confirm = client.get(f"/organizations/acme/members/{membership.pk}/remove/")
    assert "Leave Acme?" in confirm.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()
    response = client.post(f"/organizations/acme/members/{membership.pk}/remove/", follow=True)
    assert "You left Acme." in response.content.decode()
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_last_owner_cannot_leave(client: Any, alice: Any) -> None:
    from portal.accounts.models import Membership

    membership = Membership.objects.get(user=alice)
    client.force_login(alice)
    response = client.post(f"/organizations/acme/members/{membership.pk}/remove/", follow=True)
    assert "An organization must keep at least one owner." in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_charlie_cannot_see_or_touch_acme(client: Any, alice: Any, charlie: Any) -> None:
    from portal.accounts.models import Membership

    membership = Membership.objects.get(user=alice)
    client.force_login(charlie)
    assert client.get("/organizations/acme/").status_code == 404
    assert client.post("/organizations/acme/invite/", {"email": "x@example.test", "role": "owner"}).status_code == 404
    assert client.post(f"/organizations/acme/members/{membership.pk}/role/", {"role": "member"}).status_code == 404
    assert client.post(f"/organizations/acme/members/{membership.pk}/remove/").status_code == 404
    assert Membership.objects.filter(pk=membership.pk, role="owner").exists()
