"""Operators' admin changes are validated, audited and published like API changes."""

from __future__ import annotations

import pytest

from portal.audit.models import AuditEvent
from portal.gateway_state.models import PublishOutbox
from portal.keys import services as keys
from portal.plans import services as plans
from portal.plans.models import Subscription


@pytest.fixture
def operator_client(client, olivia):
    client.force_login(olivia)
    return client


def _plan_post(plan, **changes):
    data = {
        "name": plan.name,
        "slug": plan.slug,
        "description": plan.description,
        "rate_per_second": plan.rate_per_second or "",
        "rate_per_minute": plan.rate_per_minute or "",
        "burst": plan.burst,
        "quota_per_day": plan.quota_per_day or "",
        "quota_per_month": plan.quota_per_month or "",
        "monthly_price": plan.monthly_price,
        "currency": plan.currency,
        "included_requests": plan.included_requests,
        "overage_price_per_1000": plan.overage_price_per_1000 or "",
        "visibility": plan.visibility,
        "is_active": "on" if plan.is_active else "",
    }
    if plan.requires_approval:
        data["requires_approval"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v != "" or k in {"description"}}


@pytest.mark.django_db
def test_it_audits_and_publishes_a_quota_change_made_in_the_admin(operator_client, olivia, alice, alice_app, free_plan):
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    PublishOutbox.objects.all().delete()

    response = operator_client.post(
        f"/admin/plans/plan/{free_plan.pk}/change/", _plan_post(free_plan, quota_per_day=42)
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    free_plan.refresh_from_db()
    assert free_plan.quota_per_day == 42
    event = AuditEvent.objects.filter(action="plan.update").latest("id")
    assert event.actor == olivia
    assert event.before["quota_per_day"] == 1000
    assert event.after["quota_per_day"] == 42
    assert PublishOutbox.objects.filter(kind="app", ref=str(alice_app.pk)).exists()


@pytest.mark.django_db
def test_it_approves_pending_subscriptions_with_an_action(operator_client, olivia, alice, alice_app, pro_plan):
    sub = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)

    response = operator_client.post(
        "/admin/plans/subscription/",
        {"action": "subscriptions_approve", "_selected_action": [sub.pk], "index": "0"},
    )

    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.status == "active"
    assert sub.approved_by == olivia
    assert AuditEvent.objects.filter(action="subscription.approve", object_id=str(sub.pk)).exists()


@pytest.mark.django_db
def test_it_sets_an_override_with_an_action(operator_client, alice, alice_app, free_plan):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    operator_client.post(
        "/admin/plans/subscription/",
        {"action": "subscriptions_set_override", "_selected_action": [sub.pk], "factor": "2", "days": "3",
         "apply": "Set override"},  # from the action's own form page (test_admin_override_form.py)
    )

    override = Subscription.objects.get(pk=sub.pk).overrides.get()
    assert override.quota_per_day == 2000
    assert override.rate_per_second == 10


@pytest.mark.django_db
def test_it_retires_a_version_with_an_action_and_refuses_to_revive_it(operator_client, echo_api):
    v1 = echo_api.versions.get(label="v1")

    operator_client.post("/admin/catalog/apiversion/", {"action": "versions_retire", "_selected_action": [v1.pk]})
    response = operator_client.post(
        "/admin/catalog/apiversion/", {"action": "versions_publish", "_selected_action": [v1.pk]}, follow=True
    )

    v1.refresh_from_db()
    assert v1.state == "retired"
    assert "cannot become published" in response.content.decode()


@pytest.mark.django_db
def test_it_revokes_keys_with_an_action(operator_client, alice, alice_app):
    key = keys.api_key_issue(application=alice_app, actor=alice).key

    operator_client.post("/admin/keys/apikey/", {"action": "keys_revoke", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.status == "revoked"


@pytest.mark.django_db
def test_it_shows_the_audit_log_read_only(operator_client, alice, alice_app):
    keys.api_key_issue(application=alice_app, actor=alice)

    listing = operator_client.get("/admin/audit/auditevent/")
    event = AuditEvent.objects.filter(action="key.issue").get()
    change = operator_client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "x"})

    assert listing.status_code == 200
    assert "key.issue" in listing.content.decode()
    assert change.status_code == 403


@pytest.mark.django_db
def test_it_keeps_developers_out_of_the_admin(client, charlie):
    client.force_login(charlie)

    response = client.get("/admin/plans/plan/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
