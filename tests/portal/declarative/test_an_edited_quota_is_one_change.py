"""Edit a quota in the file: the diff shows exactly that change; the sync publishes it, audited as the operator."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from gateway import contract
from portal.audit.models import AuditEvent
from portal.declarative.selectors import config_diff
from portal.plans import services as plans
from tests.portal.declarative.conftest import load, plan_entry


def _double_pro_quota(data):
    plan_entry(data, "echo", "pro")["quota_per_month"] = 2_000_000


@pytest.mark.django_db
def test_the_diff_names_exactly_the_edited_quota(pro_plan, dumped):
    changes = config_diff(document=load(dumped(_double_pro_quota)))

    assert [str(c) for c in changes] == ["plan echo/pro: quota_per_month 1000000 -> 2000000"]
    assert changes[0].as_dict()["before"] == 1_000_000


@pytest.mark.django_db
def test_the_sync_reaches_the_gateway_and_names_the_actor(
    alice, olivia, alice_app, pro_plan, dumped, redis_client, django_capture_on_commit_callbacks
):
    subscription = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)
    plans.subscription_approve(subscription=subscription, actor=olivia)
    path = dumped(_double_pro_quota)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("config", "sync", str(path), "--actor", olivia.email)

    raw = redis_client.get(contract.app_key(alice_app.pk))
    assert raw is not None
    grant = contract.ApplicationRecord.from_json(raw).subscriptions[str(pro_plan.api_id)]
    assert grant.limits.quota_per_month == 2_000_000
    event = AuditEvent.objects.filter(action="plan.update", object_id=str(pro_plan.pk)).latest("id")
    assert event.actor == olivia
    assert event.after["quota_per_month"] == 2_000_000
    assert AuditEvent.objects.filter(action="config.sync", actor=olivia).exists()
