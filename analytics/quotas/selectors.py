"""Quota reads: how much of each quota window an application has used, and when it runs out;
a developer's alert thresholds, and the form that edits them on the usage page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Sum
from django.http import QueryDict
from django.utils import timezone

from analytics.billing.rules import month_bounds, month_start
from analytics.models import Granularity, QuotaAlert, Rollup
from analytics.quotas.forms import QuotaAlertForm
from portal.plans.selectors import live_subscriptions_of_application


@dataclass(frozen=True)
class QuotaUsage:
    subscription_id: int
    api_name: str
    plan_name: str
    period: str  # "daily" or "monthly"
    window: str
    limit: int | None
    used: int
    resets_at: datetime
    exhausted_at: datetime | None  # forecast at the current rate; None if not within the window

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> float | None:
        return None if not self.limit else round(self.used * 100 / self.limit, 1)


def _admitted_since(subscription_id: int, since: datetime) -> int:
    """Admitted requests from ``since`` (a UTC day or month start) on. Day rollups
    are updated by every batch, so this is as fresh as the consumer."""
    n = Rollup.objects.filter(
        granularity=Granularity.DAY, subscription_id=subscription_id, bucket__gte=since
    ).aggregate(n=Sum("admitted"))["n"]
    return int(n or 0)


def forecast_exhaustion(*, used: int, limit: int, window_start: datetime, now: datetime,
                        resets_at: datetime) -> datetime | None:
    """Linear forecast at the average rate since the window began. None when the
    quota will not run out before it resets (or there is no usage yet)."""
    if used >= limit:
        return now
    elapsed = (now - window_start).total_seconds()
    if used <= 0 or elapsed <= 0:
        return None
    rate = used / elapsed
    eta = now + timedelta(seconds=(limit - used) / rate)
    return eta if eta < resets_at else None


def quota_usage(*, application_id: int, now: datetime | None = None) -> list[QuotaUsage]:
    """Per live subscription: its daily and monthly quota windows (or one monthly row
    saying it is unlimited), used so far, when each resets, and when it runs out."""
    now = now or timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    m_start, m_end = month_bounds(month_start(now))
    out = []
    for sub in live_subscriptions_of_application(application_id=application_id):
        windows = [
            ("daily", f"d{day_start:%Y-%m-%d}", sub.plan.quota_per_day, day_start, day_start + timedelta(days=1)),
            ("monthly", f"m{m_start:%Y-%m}", sub.plan.quota_per_month, m_start, m_end),
        ]
        limited = [w for w in windows if w[2] is not None] or windows[1:]  # unlimited: one monthly row says so
        for period, window, limit, start, reset in limited:
            used = _admitted_since(sub.pk, start)
            exhausted = (
                forecast_exhaustion(used=used, limit=limit, window_start=start, now=now, resets_at=reset)
                if limit else None
            )
            out.append(QuotaUsage(sub.pk, sub.api.name, sub.plan.name, period, window, limit, used, reset, exhausted))
    return out


def quota_alert_application_ids() -> list[int]:
    """The applications whose developers asked for quota emails."""
    return list(QuotaAlert.objects.values_list("application_id", flat=True))


def quota_alert_of(*, application_id: int) -> QuotaAlert | None:
    return QuotaAlert.objects.filter(application_id=application_id).first()


def quota_alert_form(*, alert: QuotaAlert | None, data: QueryDict | None = None) -> QuotaAlertForm:
    """The usage page's alert form: bound to ``data`` when the developer submits it,
    otherwise showing the stored thresholds (80 and 100 until any are saved)."""
    if data is not None:
        return QuotaAlertForm(data)
    initial = ", ".join(str(p) for p in alert.percentages) if alert else "80, 100"
    return QuotaAlertForm(initial={"percentages": initial})
