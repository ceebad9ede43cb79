"""Deprecation writes: tell the callers of a deprecated version (keyword-only, one
transaction; the emails go out after commit)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from analytics.deprecation.selectors import deprecated_callers
from analytics.models import DeprecationNotice
from portal.accounts.selectors import organization_admin_emails
from portal.catalog.selectors import api_version_get, version_is_deprecated
from portal.core.errors import Conflict
from portal.keys.selectors import applications_by_id

if TYPE_CHECKING:
    from portal.accounts.models import User


@transaction.atomic
def deprecation_notify(*, api_id: int, version: str, actor: User, days: int = 30) -> list[DeprecationNotice]:
    """Email the owners and admins of every application that called a deprecated
    version in the last ``days`` days."""
    ver = api_version_get(api_id=api_id, label=version)
    if not version_is_deprecated(ver):
        raise Conflict("Only a deprecated version's callers are notified.")
    successor = f" Please move to {ver.successor.label}." if ver.successor else ""
    sunset = f" It will be retired on {ver.sunset_at:%Y-%m-%d}." if ver.sunset_at else ""
    callers = deprecated_callers(since=timezone.now() - timedelta(days=days), api_id=api_id, version=version)
    apps = applications_by_id(ids=[row["application_id"] for row in callers])
    notices = []
    for row in callers:
        app = apps.get(row["application_id"])
        if app is None:
            continue
        emails = organization_admin_emails(organization_id=app.organization_id)
        if not emails:
            continue
        transaction.on_commit(
            partial(
                send_mail,
                subject=f"[Tollway] {ver.api.name} {ver.label} is deprecated",
                message=(
                    f"Your application {app.name} made {row['requests']:,} requests to {ver.api.name} {ver.label} "
                    f"in the last {days} days. That version is deprecated.{sunset}{successor}"
                ),
                from_email=None,
                recipient_list=emails,
            )
        )
        notices.append(
            DeprecationNotice.objects.create(
                api_id=api_id, version=version, application_id=app.pk, sent_to=emails, sent_by=actor
            )
        )
    return notices
