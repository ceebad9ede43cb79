"""Reads scoped to what a user may see. Everything a developer sees goes through these."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from portal.accounts.models import Membership, Organization


def organizations_for(user: Any) -> QuerySet[Organization]:
    if not getattr(user, "is_authenticated", False):
        return Organization.objects.none()
    if user.is_staff:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user).distinct()


def organization_ids_for(user: Any) -> list[int]:
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))
