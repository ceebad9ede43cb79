"""Fields a caller may not set are ignored (or the request is rejected), never applied."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.keys.models import ApiKey
from portal.plans.models import Subscription
from tests.portal.api.conftest import assert_error_shape


@pytest.mark.django_db
def test_it_keeps_a_subscription_to_an_approval_plan_pending(client_for, alice, alice_app, pro_plan, olivia):
    response = client_for(alice).post(
        "/api/v1/subscriptions/",
        {
            "application": alice_app.pk,
            "plan": pro_plan.pk,
            "status": "active",
            "approved_by": olivia.pk,
            "approved_at": "2026-01-01T00:00:00Z",
        },
    )

    assert response.status_code == 201
    subscription = Subscription.objects.get(pk=response.json()["id"])
    assert subscription.status == "pending"
    assert subscription.approved_by is None
    assert subscription.approved_at is None


@pytest.mark.django_db
def test_it_ignores_hash_prefix_and_status_when_issuing_a_key(client_for, alice, alice_app, charlie_app):
    response = client_for(alice).post(
        f"/api/v1/applications/{alice_app.pk}/keys/",
        {
            "label": "ci",
            "key_hash": "0" * 64,
            "prefix": "tw_chosen",
            "status": "revoked",
            "application": charlie_app.pk,
            "grace_until": "2099-01-01T00:00:00Z",
        },
    )

    assert response.status_code == 201
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert key.key_hash != "0" * 64
    assert key.prefix != "tw_chosen"
    assert key.status == "active"
    assert key.application_id == alice_app.pk
    assert key.grace_until is None
    assert not charlie_app.keys.exists()


@pytest.mark.django_db
def test_it_ignores_moving_an_application_to_another_org(client_for, alice, alice_app, globex):
    response = client_for(alice).patch(
        f"/api/v1/applications/{alice_app.pk}/", {"name": "Renamed", "organization": globex.pk, "created_by": None}
    )

    assert response.status_code == 200
    alice_app.refresh_from_db()
    assert alice_app.name == "Renamed"
    assert alice_app.organization.slug == "acme"
    assert alice_app.created_by == alice


@pytest.mark.django_db
def test_it_ignores_is_staff_and_user_on_a_membership(client_for, alice, bob, charlie, acme):
    membership = Membership.objects.get(user=bob, organization=acme)

    response = client_for(alice).patch(
        f"/api/v1/organizations/{acme.pk}/members/{membership.pk}/",
        {"role": "admin", "is_staff": True, "is_superuser": True, "user": charlie.pk, "organization": 999},
    )

    assert response.status_code == 200
    membership.refresh_from_db()
    bob.refresh_from_db()
    assert membership.role == "admin"
    assert membership.user == bob
    assert membership.organization == acme
    assert not bob.is_staff
    assert not bob.is_superuser


@pytest.mark.django_db
def test_it_ignores_operator_fields_on_an_organization(client_for, bob):
    response = client_for(bob).post("/api/v1/organizations/", {"name": "Bob Co", "slug": "chosen-by-bob"})

    assert response.status_code == 201
    assert response.json()["name"] == "Bob Co"
    assert response.json()["slug"] == "bob-co"
    assert Membership.objects.get(user=bob, organization_id=response.json()["id"]).role == "owner"


@pytest.mark.django_db
def test_it_rejects_a_state_change_through_a_version_update(client_for, olivia, echo_api):
    v2 = echo_api.versions.get(label="v2")

    response = client_for(olivia).patch(
        f"/api/v1/apis/{echo_api.pk}/versions/{v2.pk}/", {"state": "retired", "changelog": "notes"}
    )

    assert response.status_code == 200
    v2.refresh_from_db()
    assert v2.state == "published"  # lifecycle changes only through the transition action
    assert v2.changelog == "notes"


@pytest.mark.django_db
def test_it_rejects_a_wrongly_typed_field_rather_than_coercing_it(client_for, alice, acme):
    error = assert_error_shape(
        client_for(alice).post("/api/v1/applications/", {"organization": str(acme.pk), "name": 42}), 400
    )

    assert set(error["fields"]) == {"organization", "name"}
