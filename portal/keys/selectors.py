from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from portal.keys.models import ApiKey, Application, KeyStatus

if TYPE_CHECKING:
    from portal.accounts.models import User


def applications_for(user: User | AnonymousUser) -> QuerySet[Application]:
    """Operators see every application; developers only their organizations' ones."""
    if not user.is_authenticated:
        return Application.objects.none()
    qs = Application.objects.select_related("organization")
    if user.is_staff:
        return qs
    return qs.filter(organization__memberships__user=user).distinct()


def keys_for(user: User | AnonymousUser) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(application__in=applications_for(user)).select_related("application")


def applications_of_member(user: User | AnonymousUser) -> QuerySet[Application]:
    """The applications of the organizations the user belongs to, operators included:
    what "your applications" means on the dashboard. Operators reach others' in the admin."""
    if not user.is_authenticated:
        return Application.objects.none()
    return (
        Application.objects.select_related("organization")
        .filter(organization__memberships__user=user)
        .distinct()
    )


def application_names(*, ids: Iterable[int]) -> dict[int, str]:
    return dict(Application.objects.filter(pk__in=list(ids)).values_list("pk", "name"))


def application_organization_names(*, ids: Iterable[int]) -> dict[int, str]:
    """Application id -> the name of the organization that owns it."""
    return dict(Application.objects.filter(pk__in=list(ids)).values_list("pk", "organization__name"))


def applications_by_id(*, ids: Iterable[int]) -> dict[int, Application]:
    return {a.pk: a for a in Application.objects.filter(pk__in=list(ids)).select_related("organization")}


def api_key_prefixes(*, application_id: int) -> list[str]:
    """The display prefixes of an application's keys, sorted, each once."""
    return sorted(set(ApiKey.objects.filter(application_id=application_id).values_list("prefix", flat=True)))


def api_key_ids_by_prefix(*, pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], list[int]]:
    """(application id, key prefix) -> the ids of the keys they name, as the metering
    stream identifies a key. Pairs that name no key are left out."""
    wanted = set(pairs)
    prefixes = sorted({prefix for _, prefix in wanted})
    out: dict[tuple[int, str], list[int]] = {}
    for start in range(0, len(prefixes), 500):  # under SQLite's bound-parameter limit
        rows = ApiKey.objects.filter(prefix__in=prefixes[start : start + 500]).values_list(
            "pk", "application_id", "prefix"
        )
        for pk, application_id, prefix in rows:
            if (application_id, prefix) in wanted:
                out.setdefault((application_id, prefix), []).append(pk)
    return out


def applications_all() -> QuerySet[Application]:
    """Every application, unscoped: names the model for a scoped id field's schema, never for lookups."""
    return Application.objects.all()


def active_keys_for(user: User | AnonymousUser) -> QuerySet[ApiKey]:
    """The caller's keys in the active state (rotating ones included: see ApiKey.effective_status)."""
    return keys_for(user).filter(status=KeyStatus.ACTIVE)


def application_find(*, application_id: int) -> Application | None:
    return Application.objects.filter(pk=application_id).first()


def api_keys_all() -> QuerySet[ApiKey]:
    """Every key, unscoped: for rebuilding the gateway's state, never for a caller."""
    return ApiKey.objects.all()


def api_key_find_by_hash(*, key_hash: str) -> ApiKey | None:
    return ApiKey.objects.filter(key_hash=key_hash).first()


def api_keys_expiring(*, start: dt.datetime, end: dt.datetime) -> QuerySet[ApiKey]:
    """Active keys whose expiry falls in [start, end), with their application."""
    return ApiKey.objects.filter(
        status=KeyStatus.ACTIVE, expires_at__gte=start, expires_at__lt=end
    ).select_related("application")
