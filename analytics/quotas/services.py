"""Quota alert writes: a developer's thresholds, and the emails they trigger.

``quota_alert_set`` is one transaction. ``quota_alert_check`` is not: it commits
each sent-row on its own before that email goes out (see its docstring).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.core.mail import send_mail
from django.db import transaction

from analytics.models import QuotaAlert, QuotaAlertSent
from analytics.quotas.selectors import quota_usage
from portal.core.changes import announce_event
from portal.core.errors import ApplicationError

if TYPE_CHECKING:
    from portal.accounts.models import User
    from portal.keys.models import Application


@transaction.atomic
def quota_alert_set(*, application: Application, user: User, percentages: list[int]) -> QuotaAlert:
    """Email ``user`` when ``application`` crosses these percentages of a quota (one set per application)."""
    cleaned = sorted({int(p) for p in percentages})
    if any(p < 1 or p > 1000 for p in cleaned):
        raise ApplicationError("Percentages must be between 1 and 1000.", fields={"percentages": ["1..1000"]})
    alert, _ = QuotaAlert.objects.update_or_create(
        application=application, defaults={"percentages": cleaned, "recipient": user}
    )
    return alert


def quota_alert_check(*, application_id: int, now: datetime | None = None) -> list[tuple[int, str, int]]:
    """Email the alert's recipient once per subscription, quota window and crossed
    threshold. The sent-row is created before the email goes out, in its own
    transaction: a crash in between loses one email rather than sending two."""
    alert = QuotaAlert.objects.select_related("recipient", "application").filter(application_id=application_id).first()
    if alert is None or not alert.percentages:
        return []
    sent: list[tuple[int, str, int]] = []
    for usage in quota_usage(application_id=application_id, now=now):
        if not usage.limit:
            continue
        used_pct = usage.used * 100 / usage.limit
        for pct in alert.percentages:
            if used_pct < pct:
                continue
            with transaction.atomic():
                _, created = QuotaAlertSent.objects.get_or_create(
                    subscription_id=usage.subscription_id, window=usage.window, percent=pct
                )
                if created:  # the webhook commits with the sent-row: once per threshold, like the email
                    announce_event("quota.threshold_reached", alert.application, usage=usage, percent=pct)
            if not created:
                continue
            send_mail(
                subject=f"[Tollway] {alert.application.name} reached {pct}% of its {usage.period} quota",
                message=(
                    f"Application {alert.application.name} has used {usage.used:,} of {usage.limit:,} requests "
                    f"({used_pct:.1f}%) of its {usage.period} quota on {usage.api_name}.\n"
                    f"The quota resets at {usage.resets_at:%Y-%m-%d %H:%M} UTC."
                ),
                from_email=None,
                recipient_list=[alert.recipient.email],
            )
            sent.append((usage.subscription_id, usage.window, pct))
    return sent
