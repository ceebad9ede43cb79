"""Subscriptions, plan limits, overrides and version transitions reach the gateway's records."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from gateway import contract
from portal.catalog import services as catalog
from portal.plans import services as plans


def _app_record(redis_client, application) -> contract.ApplicationRecord:
    raw = redis_client.get(contract.app_key(application.pk))
    assert raw is not None
    return contract.ApplicationRecord.from_json(raw)


@pytest.mark.django_db
def test_it_publishes_an_active_subscription_with_its_limits(
    alice, alice_app, free_plan, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    grant = _app_record(redis_client, alice_app).subscriptions[str(free_plan.api_id)]
    assert grant.subscription_id == sub.pk
    assert grant.status == "active"
    assert grant.limits == contract.Limits(rate_per_second=5, rate_per_minute=60, burst=0, quota_per_day=1000)


@pytest.mark.django_db
def test_it_publishes_a_pending_subscription_until_approved(
    alice, olivia, alice_app, pro_plan, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)
    assert _app_record(redis_client, alice_app).subscriptions[str(pro_plan.api_id)].status == "pending"

    with django_capture_on_commit_callbacks(execute=True):
        plans.subscription_approve(subscription=sub, actor=olivia)

    assert _app_record(redis_client, alice_app).subscriptions[str(pro_plan.api_id)].status == "active"
    sub.refresh_from_db()
    assert sub.approved_by == olivia


@pytest.mark.django_db
def test_it_publishes_a_suspension(
    alice, olivia, alice_app, free_plan, redis_client, django_capture_on_commit_callbacks
):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    with django_capture_on_commit_callbacks(execute=True):
        plans.subscription_suspend(subscription=sub, actor=olivia)

    assert _app_record(redis_client, alice_app).subscriptions[str(free_plan.api_id)].status == "suspended"


@pytest.mark.django_db
def test_it_publishes_a_quota_change_to_every_subscriber(
    alice, olivia, alice_app, free_plan, redis_client, django_capture_on_commit_callbacks
):
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    with django_capture_on_commit_callbacks(execute=True):
        plans.plan_update(plan=free_plan, actor=olivia, quota_per_day=5)

    assert _app_record(redis_client, alice_app).subscriptions[str(free_plan.api_id)].limits.quota_per_day == 5


@pytest.mark.django_db
def test_it_publishes_an_override_with_its_expiry(
    alice, olivia, alice_app, free_plan, redis_client, django_capture_on_commit_callbacks
):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    until = timezone.now() + dt.timedelta(days=7)
    with django_capture_on_commit_callbacks(execute=True):
        plans.override_create(subscription=sub, actor=olivia, expires_at=until, quota_per_day=2000)

    grant = _app_record(redis_client, alice_app).subscriptions[str(free_plan.api_id)]
    assert grant.override_limits is not None
    assert grant.override_limits.quota_per_day == 2000
    assert grant.override_limits.rate_per_second == 5  # unchanged dimensions keep the plan's value
    assert dt.datetime.fromisoformat(grant.override_expires_at) == until


@pytest.mark.django_db
def test_it_publishes_each_version_transition(olivia, echo_api, redis_client, django_capture_on_commit_callbacks):
    v2 = echo_api.versions.get(label="v2")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.version_transition(version=v2, to_state="retired", actor=olivia)

    route = contract.RouteRecord.from_json(redis_client.hget(contract.ROUTES_KEY, "echo/v2"))
    assert route.state == "retired"


@pytest.mark.django_db
def test_it_publishes_deprecation_details(olivia, echo_api, redis_client, django_capture_on_commit_callbacks):
    v2 = echo_api.versions.get(label="v2")
    v1 = echo_api.versions.get(label="v1")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.version_update(version=v1, actor=olivia, changelog="touch")

    route = contract.RouteRecord.from_json(redis_client.hget(contract.ROUTES_KEY, "echo/v1"))
    assert route.state == "deprecated"
    assert route.successor_version == v2.label
    assert route.deprecated_at is not None
    assert route.upstreams == (contract.Upstream(url="http://127.0.0.1:8090", weight=1),)
