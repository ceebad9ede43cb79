from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def _subscribe(client: Any, app: Any, plan: Any) -> Any:
    return client.post("/subscriptions/new/", {"application": app.pk, "plan": plan.pk}, follow=True)


def test_a_free_plan_is_active_at_once(client: Any, alice: Any, alice_app: Any, free_plan: Any) -> None:
    client.force_login(alice)
    response = _subscribe(client, alice_app, free_plan)
    assert "Subscribed to Echo · Free" in response.content.decode()
    assert alice_app.subscriptions.get().status == "active"


def test_a_plan_needing_approval_is_pending_and_says_so(client: Any, alice: Any, alice_app: Any, pro_plan: Any):
    client.force_login(alice)
    body = _subscribe(client, alice_app, pro_plan).content.decode()
    assert "pending approval by an operator" in body
    assert "An operator must approve it before your keys can call this API." in body
    assert alice_app.subscriptions.get().status == "pending"


def test_the_form_preselects_the_plan_from_the_marketplace(client: Any, alice: Any, alice_app: Any, pro_plan: Any):
    client.force_login(alice)
    response = client.get("/subscriptions/new/", {"plan": pro_plan.pk, "application": "nonsense"})
    assert response.context["form"]["plan"].value() == pro_plan.pk


def test_a_second_live_subscription_to_the_same_api_is_a_form_error(
    client: Any, alice: Any, alice_app: Any, free_plan: Any, pro_plan: Any
) -> None:
    client.force_login(alice)
    _subscribe(client, alice_app, free_plan)
    response = client.post("/subscriptions/new/", {"application": alice_app.pk, "plan": pro_plan.pk})
    assert response.status_code == 200
    assert "already has a subscription to this API" in str(response.context["form"].non_field_errors())


def test_changing_to_a_plan_needing_approval_keeps_the_current_one(
    client: Any, alice: Any, alice_app: Any, free_plan: Any, pro_plan: Any
) -> None:
    from portal.plans import services

    subscription = services.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    client.force_login(alice)
    response = client.post(f"/subscriptions/{subscription.pk}/change/", {"plan": pro_plan.pk}, follow=True)
    assert "needs an operator&#x27;s approval" in response.content.decode()
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.requested_plan) == (free_plan, pro_plan)


def test_cancel_asks_then_cancels(client: Any, alice: Any, alice_app: Any, free_plan: Any) -> None:
    from portal.plans import services

    subscription = services.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    client.force_login(alice)
    assert "Cancel the subscription" in client.get(f"/subscriptions/{subscription.pk}/cancel/").content.decode()
    response = client.post(f"/subscriptions/{subscription.pk}/cancel/", follow=True)
    assert "cancelled" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == "cancelled"
    again = client.post(f"/subscriptions/{subscription.pk}/cancel/", follow=True)
    assert again.status_code == 200
    assert "A cancelled subscription cannot be" in again.content.decode()


def test_charlie_cannot_subscribe_alices_application(client: Any, charlie: Any, alice_app: Any, free_plan: Any):
    client.force_login(charlie)
    response = client.post("/subscriptions/new/", {"application": alice_app.pk, "plan": free_plan.pk})
    assert response.status_code == 302  # charlie has no application: sent to create one
    assert not alice_app.subscriptions.exists()
