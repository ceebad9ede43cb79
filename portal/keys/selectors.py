from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from portal.keys.models import ApiKey, Application


def applications_for(user: Any) -> QuerySet[Application]:
    """Operators see every application; developers only their organizations' ones."""
    if not getattr(user, "is_authenticated", False):
        return Application.objects.none()
    qs = Application.objects.select_related("organization")
    if user.is_staff:
        return qs
    return qs.filter(organization__memberships__user=user).distinct()


def keys_for(user: Any) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(application__in=applications_for(user)).select_related("application")


def applications_of_member(user: Any) -> QuerySet[Application]:
    """The applications of the organizations the user belongs to, operators included:
    what "your applications" means on the dashboard. Operators reach others' in the admin."""
    if not getattr(user, "is_authenticated", False):
        return Application.objects.none()
    return (
        Application.objects.select_related("organization")
        .filter(organization__memberships__user=user)
        .distinct()
    )
