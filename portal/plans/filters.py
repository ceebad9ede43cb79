from __future__ import annotations

import django_filters

from portal.plans.models import Plan, Subscription, SubscriptionStatus


class PlanFilter(django_filters.FilterSet):
    class Meta:
        model = Plan
        fields = ["api", "requires_approval"]


class SubscriptionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SubscriptionStatus.choices)

    class Meta:
        model = Subscription
        fields = ["status", "application", "api", "plan"]
