"""Plans, subscriptions and overrides. Every write is audited and published."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.audit.services import audit_record, model_snapshot
from portal.catalog.selectors import Visibility
from portal.core.changes import announce, announce_event, application_changed, plan_changed
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.plans.limits import LIMIT_FIELDS
from portal.plans.models import LIVE_SUBSCRIPTION_STATES, Override, Plan, PlanChange, Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from portal.accounts.models import User
    from portal.keys.models import Application

PLAN_FIELDS = [
    "name",
    "slug",
    "description",
    *LIMIT_FIELDS,
    "monthly_price",
    "currency",
    "included_requests",
    "overage_price_per_1000",
    "requires_approval",
    "visibility",
    "is_active",
]
SUBSCRIPTION_FIELDS = ["plan_id", "requested_plan_id", "status", "approved_by_id", "approved_at", "cancelled_at"]
# For messages: "A cancelled subscription cannot be cancelled."
PAST_PARTICIPLES = {
    "subscription.approve": "approved",
    "subscription.reject": "rejected",
    "subscription.suspend": "suspended",
    "subscription.resume": "resumed",
    "subscription.cancel": "cancelled",
    "subscription.change_plan": "moved to another plan",
}
OVERRIDE_FIELDS = [*LIMIT_FIELDS, "expires_at"]


def _plan_subscribable(plan: Plan, actor: User) -> None:
    staff = getattr(actor, "is_staff", False)
    if not plan.is_active:
        raise Conflict("This plan no longer takes new subscriptions.")
    if not staff and (plan.visibility != Visibility.PUBLIC or plan.api.visibility != Visibility.PUBLIC):
        raise NotAllowed("This plan is not available to you.")


# --- plans -----------------------------------------------------------------------------


@transaction.atomic
def plan_create(*, actor: User, **fields: object) -> Plan:
    plan = Plan(**fields)
    plan.full_clean()
    plan.save()
    audit_record(actor=actor, action="plan.create", obj=plan, after=model_snapshot(plan, PLAN_FIELDS))
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, actor: User, **changes: object) -> Plan:
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    before = model_snapshot(plan, PLAN_FIELDS)
    for name, value in changes.items():
        if name not in PLAN_FIELDS:
            raise ValueError(f"plan field {name!r} cannot be changed here")
        setattr(plan, name, value)
    plan.full_clean()
    plan.save()
    after = model_snapshot(plan, PLAN_FIELDS)
    if after != before:
        audit_record(actor=actor, action="plan.update", obj=plan, before=before, after=after)
        announce(plan_changed, [plan.pk])
    return plan


# --- subscriptions -----------------------------------------------------------------------


@transaction.atomic
def subscription_create(*, application: Application, plan: Plan, actor: User) -> Subscription:
    """Active at once, or pending when the plan needs an operator's approval."""
    # Judge the plan as it is now in the database, not as the caller last saw it.
    plan = Plan.objects.select_related("api").get(pk=plan.pk)
    _plan_subscribable(plan, actor)
    status = SubscriptionStatus.PENDING if plan.requires_approval else SubscriptionStatus.ACTIVE
    now = timezone.now()
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                application=application, plan=plan, api_id=plan.api_id, status=status, created_by=actor
            )
    except IntegrityError as exc:
        raise Conflict("This application already has a subscription to this API; change its plan instead.") from exc
    if status == SubscriptionStatus.ACTIVE:
        PlanChange.objects.create(subscription=subscription, from_plan=None, to_plan=plan, changed_at=now, actor=actor)
    audit_record(
        actor=actor,
        action="subscription.create",
        obj=subscription,
        after=model_snapshot(subscription, SUBSCRIPTION_FIELDS),
        organization_id=application.organization_id,
    )
    announce(application_changed, [application.pk])
    if status == SubscriptionStatus.PENDING:
        announce_event("subscription.requested", subscription)
    return subscription


class SubscriptionTransition(Protocol):
    """The shape shared by subscription_approve, _reject, _suspend, _resume and _cancel."""

    def __call__(self, *, subscription: Subscription, actor: User) -> Subscription: ...


def _transition(
    subscription: Subscription,
    *,
    actor: User,
    action: str,
    allowed_from: set[str],
    apply: Callable[[Subscription], None],
) -> Subscription:
    subscription = Subscription.objects.select_for_update().select_related("application").get(pk=subscription.pk)
    if subscription.status not in allowed_from:
        verb = PAST_PARTICIPLES.get(action, action)
        raise InvalidTransition(f"A {subscription.status} subscription cannot be {verb}.")
    before = model_snapshot(subscription, SUBSCRIPTION_FIELDS)
    apply(subscription)
    subscription.save()
    audit_record(
        actor=actor,
        action=action,
        obj=subscription,
        before=before,
        after=model_snapshot(subscription, SUBSCRIPTION_FIELDS),
        organization_id=subscription.application.organization_id,
    )
    announce(application_changed, [subscription.application_id])
    return subscription


@transaction.atomic
def subscription_approve(*, subscription: Subscription, actor: User) -> Subscription:
    """Approves a pending subscription, or a pending plan change of an active one."""
    now = timezone.now()
    event = "subscription.approved"

    def apply(sub: Subscription) -> None:
        nonlocal event
        if sub.status == SubscriptionStatus.ACTIVE:
            event = "plan_change.approved"
            if sub.requested_plan_id is None:
                raise InvalidTransition("This subscription has nothing waiting for approval.")
            PlanChange.objects.create(
                subscription=sub,
                from_plan_id=sub.plan_id,
                to_plan_id=sub.requested_plan_id,
                changed_at=now,
                actor=actor,
            )
            sub.plan_id = sub.requested_plan_id
            sub.requested_plan = None
        else:
            PlanChange.objects.create(
                subscription=sub, from_plan=None, to_plan_id=sub.plan_id, changed_at=now, actor=actor
            )
            sub.status = SubscriptionStatus.ACTIVE
        sub.approved_by = actor
        sub.approved_at = now

    subscription = _transition(
        subscription,
        actor=actor,
        action="subscription.approve",
        allowed_from={SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE},
        apply=apply,
    )
    announce_event(event, subscription)
    return subscription


@transaction.atomic
def subscription_reject(*, subscription: Subscription, actor: User) -> Subscription:
    """Turns down a pending subscription (it ends cancelled) or a pending plan change."""
    now = timezone.now()

    def apply(sub: Subscription) -> None:
        if sub.status == SubscriptionStatus.ACTIVE:
            if sub.requested_plan_id is None:
                raise InvalidTransition("This subscription has nothing waiting for approval.")
            sub.requested_plan = None
        else:
            sub.status = SubscriptionStatus.CANCELLED
            sub.cancelled_at = now

    subscription = _transition(
        subscription,
        actor=actor,
        action="subscription.reject",
        allowed_from={SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE},
        apply=apply,
    )
    if subscription.status == SubscriptionStatus.CANCELLED:
        announce_event("subscription.cancelled", subscription, reason="rejected")
    return subscription


@transaction.atomic
def subscription_suspend(*, subscription: Subscription, actor: User) -> Subscription:
    def apply(sub: Subscription) -> None:
        sub.status = SubscriptionStatus.SUSPENDED

    subscription = _transition(
        subscription, actor=actor, action="subscription.suspend", allowed_from={SubscriptionStatus.ACTIVE}, apply=apply
    )
    announce_event("subscription.suspended", subscription)
    return subscription


@transaction.atomic
def subscription_resume(*, subscription: Subscription, actor: User) -> Subscription:
    def apply(sub: Subscription) -> None:
        sub.status = SubscriptionStatus.ACTIVE

    return _transition(
        subscription,
        actor=actor,
        action="subscription.resume",
        allowed_from={SubscriptionStatus.SUSPENDED},
        apply=apply,
    )


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, actor: User) -> Subscription:
    now = timezone.now()

    def apply(sub: Subscription) -> None:
        sub.status = SubscriptionStatus.CANCELLED
        sub.cancelled_at = now
        sub.requested_plan = None

    subscription = _transition(
        subscription,
        actor=actor,
        action="subscription.cancel",
        allowed_from={SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE, SubscriptionStatus.SUSPENDED},
        apply=apply,
    )
    announce_event("subscription.cancelled", subscription, reason="cancelled")
    return subscription


@transaction.atomic
def subscription_change_plan(*, subscription: Subscription, plan: Plan, actor: User) -> Subscription:
    """Switch to another plan of the same API. Immediate, unless the new plan needs
    approval: then it waits in ``requested_plan`` and the current plan stays in force."""
    plan = Plan.objects.select_related("api").get(pk=plan.pk)
    _plan_subscribable(plan, actor)
    if plan.api_id != subscription.api_id:
        raise Conflict("The new plan must belong to the same API.", fields={"plan": ["Must be a plan of this API."]})
    if plan.pk == subscription.plan_id:
        raise Conflict("The subscription is already on this plan.", fields={"plan": ["Already on this plan."]})
    now = timezone.now()
    needs_approval = plan.requires_approval and not getattr(actor, "is_staff", False)
    event = ""

    def apply(sub: Subscription) -> None:
        nonlocal event
        if sub.status == SubscriptionStatus.PENDING:
            sub.plan = plan  # not active yet: nothing to prorate
            return
        if needs_approval:
            sub.requested_plan = plan
            event = "plan_change.requested"
            return
        PlanChange.objects.create(subscription=sub, from_plan_id=sub.plan_id, to_plan=plan, changed_at=now, actor=actor)
        sub.plan = plan
        sub.requested_plan = None
        event = "plan_change.approved"  # immediate: no approval needed

    subscription = _transition(
        subscription,
        actor=actor,
        action="subscription.change_plan",
        allowed_from={SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE, SubscriptionStatus.SUSPENDED},
        apply=apply,
    )
    if event:
        announce_event(event, subscription)
    return subscription


# --- overrides -----------------------------------------------------------------------------


@transaction.atomic
def override_create(
    *, subscription: Subscription, actor: User, expires_at: dt.datetime, reason: str = "", **limits: int | None
) -> Override:
    if expires_at <= timezone.now():
        raise Conflict("An override must expire in the future.", fields={"expires_at": ["Must be in the future."]})
    override = Override(subscription=subscription, expires_at=expires_at, reason=reason, created_by=actor, **limits)
    override.full_clean()
    override.save()
    audit_record(
        actor=actor,
        action="override.create",
        obj=override,
        after=model_snapshot(override, OVERRIDE_FIELDS),
        organization_id=subscription.application.organization_id,
    )
    announce(application_changed, [subscription.application_id])
    return override


@transaction.atomic
def override_delete(*, override: Override, actor: User) -> None:
    subscription = override.subscription
    audit_record(
        actor=actor,
        action="override.delete",
        obj=override,
        before=model_snapshot(override, OVERRIDE_FIELDS),
        organization_id=subscription.application.organization_id,
    )
    override.delete()
    announce(application_changed, [subscription.application_id])


@transaction.atomic
def plan_delete(*, plan: Plan, actor: User, force: bool = False) -> bool:
    """Remove a plan. Live subscriptions make it refuse unless ``force``, which cancels them
    first (each cancellation audited and published). A plan that subscriptions ever used stays
    for their billing history (PROTECT): it is deactivated and made private instead.
    Returns whether the row was deleted."""
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    live = list(plan.subscriptions.filter(status__in=LIVE_SUBSCRIPTION_STATES))
    if live and not force:
        raise Conflict(f"The plan {plan.slug} has {len(live)} live subscription(s).")
    for subscription in live:
        subscription_cancel(subscription=subscription, actor=actor)
    before = model_snapshot(plan, PLAN_FIELDS)
    if plan.subscriptions.exists() or PlanChange.objects.filter(to_plan=plan).exists():
        plan_update(plan=plan, actor=actor, is_active=False, visibility=Visibility.PRIVATE)
        return False
    audit_record(actor=actor, action="plan.delete", obj=plan, before=before)
    plan.delete()  # nothing subscribed to it, so no application record names it
    return True
