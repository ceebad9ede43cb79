from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from portal.catalog.models import Api, ApiVersion, LifecycleState, Visibility

# What developers may see of a version: drafts are the operators' work in progress.
VISIBLE_STATES = (LifecycleState.PUBLISHED, LifecycleState.DEPRECATED, LifecycleState.RETIRED)


def apis_visible_to(user: Any) -> QuerySet[Api]:
    if getattr(user, "is_staff", False):
        return Api.objects.all()
    return Api.objects.filter(visibility=Visibility.PUBLIC).filter(versions__state__in=VISIBLE_STATES).distinct()


def versions_visible_to(user: Any) -> QuerySet[ApiVersion]:
    qs = ApiVersion.objects.select_related("api", "successor")
    if getattr(user, "is_staff", False):
        return qs
    return qs.filter(api__visibility=Visibility.PUBLIC, state__in=VISIBLE_STATES)


def api_search(queryset: QuerySet[Api], text: str) -> QuerySet[Api]:
    """Full-text-ish search over name, summary and tags, portable across SQLite and PostgreSQL."""
    for word in text.split()[:8]:
        queryset = queryset.filter(
            Q(name__icontains=word) | Q(summary__icontains=word) | Q(tags__icontains=word) | Q(slug__icontains=word)
        )
    return queryset
