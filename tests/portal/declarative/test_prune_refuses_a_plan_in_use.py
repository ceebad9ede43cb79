"""--prune removes a plan the file no longer names, but not one with live subscriptions unless forced."""

from __future__ import annotations

import pytest

from portal.declarative.selectors import config_dump
from portal.declarative.services import ConfigError, config_sync
from portal.plans import services as plans
from portal.plans.models import Plan, Subscription
from tests.portal.declarative.conftest import load


def _without_free(data):
    data["plans"] = [p for p in data["plans"] if p["slug"] != "free"]


@pytest.mark.django_db
def test_it_deletes_an_unused_plan(olivia, free_plan, dumped):
    result = config_sync(document=load(dumped(_without_free)), actor=olivia, prune=True)

    assert [str(c) for c in result.changes] == ["plan echo/free: delete"]
    assert not Plan.objects.filter(pk=free_plan.pk).exists()


@pytest.mark.django_db
def test_without_prune_it_keeps_what_the_file_omits(olivia, free_plan, dumped):
    assert config_sync(document=load(dumped(_without_free)), actor=olivia).changes == []
    assert Plan.objects.filter(pk=free_plan.pk).exists()


@pytest.mark.django_db
def test_it_refuses_a_plan_with_live_subscriptions_and_changes_nothing(alice, olivia, alice_app, free_plan, dumped):
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    path = dumped(_without_free)
    before = config_dump()

    with pytest.raises(ConfigError) as caught:
        config_sync(document=load(path), actor=olivia, prune=True)

    assert "plan echo/free has 1 live subscription(s)" in caught.value.message
    assert "--force" in caught.value.message
    assert config_dump() == before


@pytest.mark.django_db
def test_force_cancels_the_subscriptions_and_retires_the_plan(alice, olivia, alice_app, free_plan, dumped):
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    result = config_sync(document=load(dumped(_without_free)), actor=olivia, prune=True, force=True)

    assert [str(c) for c in result.changes] == ["plan echo/free: deactivate"]
    subscription.refresh_from_db()
    assert subscription.status == "cancelled"
    # Kept for the subscription's billing history, but closed and hidden...
    free_plan.refresh_from_db()
    assert (free_plan.is_active, free_plan.visibility) == (False, "private")
    # ...and a second prune leaves it alone.
    assert config_sync(document=load(dumped(_without_free)), actor=olivia, prune=True).changes == []
    assert Subscription.objects.filter(plan=free_plan).count() == 1
