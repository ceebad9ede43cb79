from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from portal.catalog.models import Api, ApiVersion, LifecycleState, Visibility
from portal.catalog.selectors import api_search
from portal.core.filters import StrictFilterSet


class ApiFilter(StrictFilterSet):
    q = django_filters.CharFilter(method="search", help_text="Words to find in name, summary, slug or tags.")
    visibility = django_filters.ChoiceFilter(choices=Visibility.choices)

    class Meta:
        model = Api
        fields = ["q", "visibility"]

    def search(self, queryset: QuerySet[Api], name: str, value: str) -> QuerySet[Api]:
        return api_search(queryset, value)


class ApiVersionFilter(StrictFilterSet):
    state = django_filters.ChoiceFilter(choices=LifecycleState.choices)

    class Meta:
        model = ApiVersion
        fields = ["state"]
