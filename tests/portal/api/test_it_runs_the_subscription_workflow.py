"""Developers subscribe, change plan and cancel; operators approve, reject, suspend and
resume. Developers cannot use the operator actions, and impossible moves are 409s."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from portal.plans import services as plans
from tests.portal.api.conftest import assert_error_shape


@pytest.mark.django_db
def test_it_activates_a_free_subscription_and_holds_a_pro_one_for_approval(
    client_for, alice, alice_app, free_plan, pro_plan, olivia
):
    client = client_for(alice)

    free = client.post("/api/v1/subscriptions/", {"application": alice_app.pk, "plan": free_plan.pk})
    assert free.status_code == 201
    assert free.json()["status"] == "active"

    change = client.post(f"/api/v1/subscriptions/{free.json()['id']}/change-plan/", {"plan": pro_plan.pk})
    assert change.status_code == 200
    assert change.json()["plan"] == free_plan.pk
    assert change.json()["requested_plan"] == pro_plan.pk

    approved = client_for(olivia).post(f"/api/v1/subscriptions/{free.json()['id']}/approve/")
    assert approved.status_code == 200
    assert approved.json()["plan"] == pro_plan.pk
    assert approved.json()["requested_plan"] is None


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["approve", "reject", "suspend", "resume"])
def test_it_keeps_operator_actions_from_developers(client_for, alice, alice_app, pro_plan, action):
    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)

    error = assert_error_shape(client_for(alice).post(f"/api/v1/subscriptions/{subscription.pk}/{action}/"), 403)

    assert error["type"] == "permission_denied"
    subscription.refresh_from_db()
    assert subscription.status == "pending"


@pytest.mark.django_db
def test_it_lets_an_operator_approve_suspend_resume_and_cancel(client_for, alice, alice_app, pro_plan, olivia):
    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)
    client = client_for(olivia)
    url = f"/api/v1/subscriptions/{subscription.pk}"

    assert client.post(f"{url}/approve/").json()["status"] == "active"
    assert client.post(f"{url}/suspend/").json()["status"] == "suspended"
    assert assert_error_shape(client.post(f"{url}/suspend/"), 409)["type"] == "invalid_transition"
    assert client.post(f"{url}/resume/").json()["status"] == "active"
    cancelled = client_for(alice).post(f"{url}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"] is not None
    assert_error_shape(client.post(f"{url}/resume/"), 409)


@pytest.mark.django_db
def test_it_lets_an_operator_reject_a_pending_subscription(client_for, alice, alice_app, pro_plan, olivia):
    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)

    response = client_for(olivia).post(f"/api/v1/subscriptions/{subscription.pk}/reject/")

    assert response.json()["status"] == "cancelled"


@pytest.mark.django_db
def test_it_refuses_a_second_live_subscription_to_the_same_api(client_for, alice, alice_app, free_plan, pro_plan):
    client = client_for(alice)
    client.post("/api/v1/subscriptions/", {"application": alice_app.pk, "plan": free_plan.pk})

    response = client.post("/api/v1/subscriptions/", {"application": alice_app.pk, "plan": pro_plan.pk})

    assert assert_error_shape(response, 409)["type"] == "conflict"


@pytest.mark.django_db
def test_it_lets_only_operators_set_overrides(client_for, alice, alice_app, free_plan, olivia):
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    url = f"/api/v1/subscriptions/{subscription.pk}/overrides/"
    body = {"quota_per_day": 2000, "expires_at": (timezone.now() + dt.timedelta(days=7)).isoformat()}

    assert_error_shape(client_for(alice).post(url, body), 403)
    created = client_for(olivia).post(url, body)

    assert created.status_code == 201
    assert created.json()["quota_per_day"] == 2000
    listed = client_for(alice).get(url).json()["results"]
    assert [o["id"] for o in listed] == [created.json()["id"]]
    assert_error_shape(client_for(alice).delete(f"{url}{created.json()['id']}/"), 403)
    assert client_for(olivia).delete(f"{url}{created.json()['id']}/").status_code == 204
    assert not subscription.overrides.exists()
