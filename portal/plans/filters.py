from __future__ import annotations

import django_filters

from portal.core.filters import StrictBooleanFilter, StrictFilterSet
from portal.plans.models import Plan, Subscription, SubscriptionStatus


class PlanFilter(StrictFilterSet):
    requires_approval = StrictBooleanFilter()

    class Meta:
        model = Plan
        fields = ["api", "requires_approval"]


class SubscriptionFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=SubscriptionStatus.choices)

    class Meta:
        model = Subscription
        fields = ["status", "application", "api", "plan"]
