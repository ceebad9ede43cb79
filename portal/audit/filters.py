from __future__ import annotations

import django_filters

from portal.audit.models import AuditEvent
from portal.core.filters import IdFilter, StrictFilterSet, UtcIsoDateTimeFilter


class AuditEventFilter(StrictFilterSet):
    action = django_filters.CharFilter(help_text="Exact action, e.g. key.revoke.")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith", help_text="e.g. key.")
    object_type = django_filters.CharFilter(help_text="e.g. keys.apikey.")
    object_id = django_filters.CharFilter()
    organization = IdFilter(field_name="organization_id")
    actor_email = django_filters.CharFilter(lookup_expr="iexact")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
