from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from portal.catalog.models import Visibility
from portal.keys.selectors import applications_for
from portal.plans.models import Plan, Subscription


def plans_visible_to(user: Any) -> QuerySet[Plan]:
    qs = Plan.objects.select_related("api")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(visibility=Visibility.PUBLIC, api__visibility=Visibility.PUBLIC, is_active=True)


def subscriptions_for(user: Any) -> QuerySet[Subscription]:
    qs = Subscription.objects.select_related("plan", "api", "application", "requested_plan")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(application__in=applications_for(user))
