"""Organizations: roles, invitations and the last owner."""

from __future__ import annotations

import pytest
from django.core import mail

from portal.accounts import services as accounts
from portal.accounts.models import Membership
from portal.core.errors import ApplicationError, Conflict, NotAllowed


@pytest.mark.django_db
def test_it_lets_a_member_not_invite(bob, acme):
    with pytest.raises(NotAllowed):
        accounts.invitation_create(organization=acme, email="x@y.test", role="member", actor=bob, base_url="http://t")


@pytest.mark.django_db
def test_it_invites_by_email_and_accepts_once(alice, acme, charlie, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        accounts.invitation_create(
            organization=acme, email="charlie@globex.test", role="member", actor=alice, base_url="http://t"
        )
    token = mail.outbox[-1].body.split("/accounts/invitations/")[1].split("/")[0]

    membership = accounts.invitation_accept(token=token, user=charlie)

    assert membership.role == "member"
    with pytest.raises(ApplicationError):
        accounts.invitation_accept(token=token, user=charlie)


@pytest.mark.django_db
def test_it_refuses_an_invitation_meant_for_someone_else(alice, bob, acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        accounts.invitation_create(
            organization=acme, email="new@x.test", role="admin", actor=alice, base_url="http://t"
        )
    token = mail.outbox[-1].body.split("/accounts/invitations/")[1].split("/")[0]

    with pytest.raises(NotAllowed):
        accounts.invitation_accept(token=token, user=bob)


@pytest.mark.django_db
def test_it_keeps_at_least_one_owner(alice, acme):
    with pytest.raises(Conflict, match="at least one owner"):
        accounts.membership_remove(membership=Membership.objects.get(user=alice), actor=alice)


@pytest.mark.django_db
def test_it_lets_a_member_leave(bob, acme):
    accounts.membership_remove(membership=Membership.objects.get(user=bob), actor=bob)

    assert not Membership.objects.filter(user=bob).exists()


@pytest.mark.django_db
def test_it_stops_an_admin_from_making_owners(alice, bob, acme):
    accounts.membership_change_role(membership=Membership.objects.get(user=bob), role="admin", actor=alice)
    carol = accounts.user_signup(email="carol@acme.test", password="another-long-passphrase-9", base_url="http://t")
    membership = Membership.objects.create(organization=acme, user=carol, role="member")

    with pytest.raises(NotAllowed):
        accounts.membership_change_role(membership=membership, role="owner", actor=bob)


@pytest.mark.django_db
def test_it_verifies_an_email_with_the_signed_link(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user = accounts.user_signup(
            email="Dana@Example.test", password="another-long-passphrase-9", base_url="http://t"
        )
    token = mail.outbox[-1].body.split("/accounts/verify/")[1].split("/")[0]

    assert user.email == "dana@example.test"
    assert not user.email_verified
    assert accounts.email_verify(token=token).email_verified
    with pytest.raises(ApplicationError):
        accounts.email_verify(token=token[:-2] + "xx")
