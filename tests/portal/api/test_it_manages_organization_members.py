"""Members see their organization's members and invitations; owners and admins
change roles, remove members and invite; a member (bob) cannot."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from portal.accounts.models import Membership
from tests.portal.api.conftest import assert_error_shape


@pytest.mark.django_db
def test_it_lists_members_to_members(client_for, bob, alice, acme):
    members = client_for(bob).get(f"/api/v1/organizations/{acme.pk}/members/").json()["results"]

    assert {(m["email"], m["role"]) for m in members} == {("alice@acme.test", "owner"), ("bob@acme.test", "member")}


@pytest.mark.django_db
def test_it_lets_an_owner_change_roles_but_not_a_member(client_for, alice, bob, acme):
    alice_membership = Membership.objects.get(user=alice, organization=acme)
    bob_membership = Membership.objects.get(user=bob, organization=acme)
    base = f"/api/v1/organizations/{acme.pk}/members"

    denied = client_for(bob).patch(f"{base}/{alice_membership.pk}/", {"role": "member"})
    assert assert_error_shape(denied, 403)["type"] == "permission_denied"
    promoted = client_for(alice).patch(f"{base}/{bob_membership.pk}/", {"role": "admin"})
    assert promoted.json()["role"] == "admin"
    last_owner = client_for(alice).patch(f"{base}/{alice_membership.pk}/", {"role": "member"})
    assert assert_error_shape(last_owner, 409)["type"] == "conflict"
    alice_membership.refresh_from_db()
    assert alice_membership.role == "owner"


@pytest.mark.django_db
def test_it_lets_a_member_leave_and_an_owner_remove(client_for, alice, bob, acme):
    bob_membership = Membership.objects.get(user=bob, organization=acme)
    alice_membership = Membership.objects.get(user=alice, organization=acme)
    base = f"/api/v1/organizations/{acme.pk}/members"

    assert_error_shape(client_for(bob).delete(f"{base}/{alice_membership.pk}/"), 403)
    assert client_for(bob).delete(f"{base}/{bob_membership.pk}/").status_code == 204
    assert_error_shape(client_for(bob).get(f"/api/v1/organizations/{acme.pk}/"), 404)  # gone with the membership


@pytest.mark.django_db
def test_it_invites_by_email_and_the_invitee_accepts(
    client_for, alice, bob, charlie, acme, django_capture_on_commit_callbacks
):
    url = f"/api/v1/organizations/{acme.pk}/invitations/"
    assert_error_shape(client_for(bob).post(url, {"email": "charlie@globex.test"}), 403)

    with django_capture_on_commit_callbacks(execute=True):
        created = client_for(alice).post(url, {"email": "charlie@globex.test", "role": "member"})

    assert created.status_code == 201
    assert "token" not in created.json()
    token = re.search(r"/accounts/invitations/([\w-]+)/", mail.outbox[-1].body).group(1)
    assert token not in client_for(alice).get(url).content.decode()
    assert_error_shape(client_for(bob).post("/api/v1/invitations/accept/", {"token": token}), 403)  # not bob's
    accepted = client_for(charlie).post("/api/v1/invitations/accept/", {"token": token})
    assert accepted.status_code == 201
    assert accepted.json()["role"] == "member"
    assert client_for(charlie).get(f"/api/v1/organizations/{acme.pk}/").status_code == 200
    assert_error_shape(client_for(charlie).post("/api/v1/invitations/accept/", {"token": token}), 400)  # used


@pytest.mark.django_db
def test_it_creates_an_organization_owned_by_the_caller(client_for, charlie):
    response = client_for(charlie).post("/api/v1/organizations/", {"name": "Charlie Labs"})

    assert response.status_code == 201
    assert Membership.objects.get(organization_id=response.json()["id"], user=charlie).role == "owner"
