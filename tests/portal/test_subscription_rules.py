"""Subscriptions: approval, one live subscription per API, plan changes and their history."""

from __future__ import annotations

import pytest

from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.plans import services as plans
from portal.plans.models import PlanChange


@pytest.mark.django_db
def test_it_activates_a_plan_without_approval_at_once(alice, alice_app, free_plan):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    assert sub.status == "active"
    assert PlanChange.objects.filter(subscription=sub, to_plan=free_plan).count() == 1


@pytest.mark.django_db
def test_it_leaves_a_plan_needing_approval_pending(alice, alice_app, pro_plan):
    sub = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)

    assert sub.status == "pending"
    assert not PlanChange.objects.filter(subscription=sub).exists()  # nothing billable yet


@pytest.mark.django_db
def test_it_refuses_a_second_live_subscription_to_the_same_api(alice, alice_app, free_plan, pro_plan):
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    with pytest.raises(Conflict, match="already has a subscription"):
        plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)


@pytest.mark.django_db
def test_it_allows_resubscribing_after_a_cancellation(alice, alice_app, free_plan):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    plans.subscription_cancel(subscription=sub, actor=alice)

    again = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    assert again.status == "active"


@pytest.mark.django_db
def test_it_waits_for_approval_before_switching_to_a_plan_that_needs_it(alice, olivia, alice_app, free_plan, pro_plan):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    sub = plans.subscription_change_plan(subscription=sub, plan=pro_plan, actor=alice)
    assert (sub.plan, sub.requested_plan, sub.status) == (free_plan, pro_plan, "active")

    sub = plans.subscription_approve(subscription=sub, actor=olivia)
    assert (sub.plan, sub.requested_plan) == (pro_plan, None)
    history = list(PlanChange.objects.filter(subscription=sub).values_list("from_plan", "to_plan"))
    assert history == [(None, free_plan.pk), (free_plan.pk, pro_plan.pk)]


@pytest.mark.django_db
def test_it_switches_at_once_to_a_plan_without_approval(alice, olivia, alice_app, free_plan, pro_plan):
    sub = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)
    plans.subscription_approve(subscription=sub, actor=olivia)

    sub = plans.subscription_change_plan(subscription=sub, plan=free_plan, actor=alice)

    assert sub.plan == free_plan


@pytest.mark.django_db
def test_it_refuses_to_resume_an_active_or_cancel_a_cancelled_subscription(alice, alice_app, free_plan):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)

    with pytest.raises(InvalidTransition):
        plans.subscription_resume(subscription=sub, actor=alice)
    plans.subscription_cancel(subscription=sub, actor=alice)
    with pytest.raises(InvalidTransition):
        plans.subscription_cancel(subscription=sub, actor=alice)


@pytest.mark.django_db
def test_it_hides_private_plans_from_developers(alice, olivia, alice_app, free_plan):
    plans.plan_update(plan=free_plan, actor=olivia, visibility="private")

    with pytest.raises(NotAllowed):
        plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)


@pytest.mark.django_db
def test_it_refuses_new_subscriptions_to_an_inactive_plan(alice, olivia, alice_app, free_plan):
    plans.plan_update(plan=free_plan, actor=olivia, is_active=False)

    with pytest.raises(Conflict, match="no longer takes"):
        plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)


@pytest.mark.django_db
def test_it_explains_a_refused_transition_in_plain_words(alice, alice_app, free_plan):
    sub = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    plans.subscription_cancel(subscription=sub, actor=alice)

    with pytest.raises(InvalidTransition) as refused:
        plans.subscription_cancel(subscription=sub, actor=alice)

    assert refused.value.message == "A cancelled subscription cannot be cancelled."
