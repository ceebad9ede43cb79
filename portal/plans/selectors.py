from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.catalog.selectors import Visibility
from portal.keys.selectors import applications_for
from portal.plans.models import LIVE_SUBSCRIPTION_STATES, Override, Plan, PlanChange, Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from portal.accounts.models import User


def plans_visible_to(user: User | AnonymousUser) -> QuerySet[Plan]:
    qs = Plan.objects.select_related("api")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(visibility=Visibility.PUBLIC, api__visibility=Visibility.PUBLIC, is_active=True)


def subscriptions_for(user: User | AnonymousUser) -> QuerySet[Subscription]:
    qs = Subscription.objects.select_related("plan", "api", "application", "requested_plan")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(application__in=applications_for(user))


def plan_names() -> dict[int, str]:
    return dict(Plan.objects.values_list("pk", "name"))


def unbilled_plan_ids(plan_ids: list[int]) -> set[int]:
    """Of ``plan_ids``, the plans that bill nothing: no monthly price and no overage price.
    Their invoice lines read "not billed" rather than as included and overage requests."""
    return set(
        Plan.objects.filter(pk__in=plan_ids, monthly_price=0)
        .filter(Q(overage_price_per_1000__isnull=True) | Q(overage_price_per_1000=0))
        .values_list("pk", flat=True)
    )


def plans_with_api() -> QuerySet[Plan]:
    return Plan.objects.select_related("api")


def plan_get(*, plan_id: int) -> Plan:
    return Plan.objects.get(pk=plan_id)


def subscriptions_of_organization(*, organization_id: int) -> dict[int, Subscription]:
    """Every subscription of the organization's applications, by id, whatever its status."""
    qs = Subscription.objects.filter(application__organization_id=organization_id).select_related("application", "api")
    return {s.pk: s for s in qs}


def live_subscriptions_of_application(*, application_id: int) -> QuerySet[Subscription]:
    """Pending, active and suspended subscriptions: the ones a quota applies to."""
    return Subscription.objects.filter(
        application_id=application_id, status__in=LIVE_SUBSCRIPTION_STATES
    ).select_related("plan", "api")


def subscription_ids_not_pending() -> list[int]:
    return list(Subscription.objects.exclude(status=SubscriptionStatus.PENDING).values_list("pk", flat=True))


def subscriber_organization_ids() -> list[int]:
    """The organizations that have at least one subscription, whatever its status, sorted."""
    return sorted(set(Subscription.objects.values_list("application__organization_id", flat=True)))


FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlanSpan:
    subscription: Subscription
    plan: Plan
    start: datetime
    end: datetime


def subscription_plan_spans(*, organization_id: int, start: datetime, end: datetime) -> list[PlanSpan]:
    """Which plan each of the organization's subscriptions was on, and when, within
    [start, end). Built from the PlanChange history; a subscription without history
    (created before it was kept) counts from approval or creation."""
    subs = (
        Subscription.objects.filter(application__organization_id=organization_id, created_at__lt=end)
        .exclude(Q(cancelled_at__lt=start))
        .select_related("plan", "api", "application")
        .order_by("pk")
    )
    changes: dict[int, list[PlanChange]] = defaultdict(list)
    for ch in PlanChange.objects.filter(subscription__in=subs).select_related("to_plan").order_by("changed_at", "pk"):
        changes[ch.subscription_id].append(ch)
    spans: list[PlanSpan] = []
    for sub in subs:
        stop = sub.cancelled_at if sub.status == SubscriptionStatus.CANCELLED and sub.cancelled_at else FAR_FUTURE
        history = changes.get(sub.pk)
        if not history:
            if sub.status == SubscriptionStatus.PENDING or (
                sub.status == SubscriptionStatus.CANCELLED and sub.approved_at is None
            ):
                continue
            history_spans = [(sub.plan, sub.approved_at or sub.created_at)]
        else:
            history_spans = [(ch.to_plan, ch.changed_at) for ch in history]
        for i, (plan, span_start) in enumerate(history_spans):
            span_end = history_spans[i + 1][1] if i + 1 < len(history_spans) else stop
            span_end = min(span_end, stop)
            if span_end <= start or span_start >= end or span_end <= span_start:
                continue
            spans.append(PlanSpan(sub, plan, max(span_start, start), min(span_end, end)))
    return spans


def subscriptions_current_for(user: User | AnonymousUser) -> QuerySet[Subscription]:
    """subscriptions_for without the cancelled ones: what a developer's dashboard lists."""
    return subscriptions_for(user).exclude(status=SubscriptionStatus.CANCELLED)


def subscription_is_active(subscription: Subscription) -> bool:
    return subscription.status == SubscriptionStatus.ACTIVE


def approvals_pending() -> QuerySet[Subscription]:
    """What waits for an operator: pending subscriptions and plan changes to a plan
    that needs approval (an active subscription with a requested plan)."""
    return Subscription.objects.filter(
        Q(status=SubscriptionStatus.PENDING)
        | Q(status__in=LIVE_SUBSCRIPTION_STATES, requested_plan__isnull=False)
    )


def approvals_pending_count() -> int:
    return approvals_pending().count()


def subscription_is_pending(subscription: Subscription) -> bool:
    return subscription.status == SubscriptionStatus.PENDING


def application_ids_subscribed_to(*, plan_ids: list[int]) -> QuerySet[Subscription, int]:
    """The applications with a live (pending, active or suspended) subscription to any of the plans."""
    return (
        Subscription.objects.filter(plan_id__in=plan_ids, status__in=LIVE_SUBSCRIPTION_STATES)
        .values_list("application_id", flat=True)
        .distinct()
    )


def overrides_unexpired() -> QuerySet[Override]:
    """Overrides still in force, by subscription and expiry (the declarative configuration's view)."""
    return (
        Override.objects.filter(expires_at__gt=timezone.now())
        .select_related("subscription", "subscription__application")
        .order_by("subscription_id", "expires_at", "pk")
    )


def subscriptions_by_id(*, ids: list[int]) -> dict[int, Subscription]:
    return {s.pk: s for s in Subscription.objects.filter(pk__in=ids).select_related("application", "api")}


def live_subscription_counts(*, plan_ids: list[int]) -> dict[int, int]:
    """Plan id -> its pending, active and suspended subscriptions (plans without any are absent)."""
    counts: dict[int, int] = defaultdict(int)
    rows = Subscription.objects.filter(plan_id__in=plan_ids, status__in=LIVE_SUBSCRIPTION_STATES)
    for plan_id in rows.values_list("plan_id", flat=True):
        counts[plan_id] += 1
    return dict(counts)


def plan_ids_ever_subscribed(*, plan_ids: list[int]) -> set[int]:
    """Plans some subscription used, whatever its status now: their rows are billing history."""
    return set(Subscription.objects.filter(plan_id__in=plan_ids).values_list("plan_id", flat=True)) | set(
        PlanChange.objects.filter(to_plan_id__in=plan_ids).values_list("to_plan_id", flat=True)
    )


def organization_ids_subscribed_to_api(*, api_id: int) -> list[int]:
    """The organizations with a live (pending, active or suspended) subscription to the API, sorted."""
    return sorted(
        set(
            Subscription.objects.filter(api_id=api_id, status__in=LIVE_SUBSCRIPTION_STATES).values_list(
                "application__organization_id", flat=True
            )
        )
    )
