"""Deprecation reads: callers of deprecated versions, from the day rollups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, Sum

from analytics.models import DeprecationNotice, Granularity, Rollup
from analytics.reports.selectors import floor_to
from portal.catalog.selectors import deprecated_versions
from portal.keys.selectors import applications_by_id


def deprecated_callers(*, since: datetime, api_id: int | None = None, version: str | None = None,
                       app_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Who still calls deprecated versions, and how much, by application."""
    cond = Q()
    meta = {}
    for v in deprecated_versions(api_id=api_id, label=version):
        cond |= Q(api_id=v.api_id, version=v.label)
        meta[(v.api_id, v.label)] = v
    if not meta:
        return []
    qs = Rollup.objects.filter(cond, granularity=Granularity.DAY, bucket__gte=floor_to(since, Granularity.DAY))
    if app_ids is not None:
        qs = qs.filter(application_id__in=app_ids)
    rows = list(
        qs.exclude(application_id=0)
        .values("api_id", "version", "application_id")
        .annotate(requests=Sum("requests"), days=Count("bucket", distinct=True))
        .order_by("-requests")
    )
    apps = applications_by_id(ids=[r["application_id"] for r in rows])
    out: list[dict[str, Any]] = []
    for r in rows:
        v = meta[(r["api_id"], r["version"])]
        app = apps.get(r["application_id"])
        out.append({
            **r,
            "api_name": v.api.name, "sunset_at": v.sunset_at, "successor": v.successor.label if v.successor else "",
            "application": app.name if app else f"#{r['application_id']}",
            "organization": app.organization.name if app else "",
            "requests": int(r["requests"]),
        })
    return out


def recent_notices(*, limit: int = 20) -> list[DeprecationNotice]:
    """The latest deprecation emails sent, newest first."""
    return list(DeprecationNotice.objects.order_by("-sent_at")[:limit])
