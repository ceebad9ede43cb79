from __future__ import annotations

import django_filters

from portal.core.filters import StrictFilterSet
from portal.keys.models import ApiKey, Application, KeyStatus


class ApplicationFilter(StrictFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Application
        fields = ["organization", "name"]


class ApiKeyFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=KeyStatus.choices, help_text="Stored status: active or revoked.")

    class Meta:
        model = ApiKey
        fields = ["status"]
