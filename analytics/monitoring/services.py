"""Monitoring writes: measure the metering lag, keep the latest measurement for the
metrics endpoint, and raise or clear the operators' alerts.

Not one transaction: like the quota alerts, an alert's row is committed before its
email goes out, so a crash in between loses one email rather than sending two, and
the email (an SMTP round trip) never holds a row lock.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from analytics import conf
from analytics.ingest.selectors import MeteringLag, metering_lag
from analytics.models import OperatorAlert
from portal.accounts.selectors import operator_emails
from portal.webhooks.services import webhook_event_emit

log = logging.getLogger(__name__)

METERING_LAG = "metering_lag"
DEAD_LETTERS = "metering_dead_letters"
ALERT_TITLES = {METERING_LAG: "Metering lag", DEAD_LETTERS: "Dead-lettered metering batches"}

# The latest measurement, for the metrics endpoint (any portal process may answer a scrape).
# It outlives a few missed checks, then vanishes: a scrape then shows no lag figures at all
# rather than stale ones, and the measured-at gauge says since when.
LAG_SNAPSHOT_KEY = "analytics:monitoring:metering-lag"
LAG_SNAPSHOT_TTL_S = 300


def metering_lag_check(*, client: redis.Redis | None = None, now_ms: int | None = None) -> MeteringLag:
    """Measure, remember the measurement, and raise or clear the two metering alerts.
    Raises redis.RedisError when Redis cannot be reached (the task logs it)."""
    lag = metering_lag(client=client, now_ms=now_ms)
    cache.set(LAG_SNAPSHOT_KEY, lag.to_dict(), LAG_SNAPSHOT_TTL_S)
    threshold = conf.METERING_LAG_ALERT_S
    worst = lag.worst
    operator_alert_update(
        name=METERING_LAG,
        breached=lag.worst_age_s > threshold,
        value=lag.worst_age_s,
        threshold=threshold,
        # Operators' webhook endpoints hear of the incident too (docs/webhooks.md).
        webhook_event="metering.lag_exceeded",
        webhook_details={
            "lag_seconds": round(lag.worst_age_s, 3),
            "threshold_seconds": threshold,
            "partition": worst.partition if worst else None,
            "pending": worst.pending if worst else 0,
        },
        summary=(
            f"The oldest unacknowledged metering entry is {lag.worst_age_s:.0f} s old, on partition "
            f"{worst.partition} ({worst.pending} pending, {worst.length} in the stream); "
            f"the threshold is {threshold} s."
            if worst else f"No metering entry is waiting; the threshold is {threshold} s."
        ),
    )
    operator_alert_update(
        name=DEAD_LETTERS,
        breached=lag.dead_letters > 0,
        value=lag.dead_letters,
        threshold=0,
        summary=(
            f"{lag.dead_letters} malformed metering batch(es) in the dead-letter stream; their requests are not billed "
            "until someone looks at them."
            if lag.dead_letters else "The dead-letter stream is empty."
        ),
    )
    return lag


def operator_alert_update(
    *,
    name: str,
    breached: bool,
    value: float,
    threshold: float,
    summary: str,
    now: datetime | None = None,
    webhook_event: str = "",
    webhook_details: dict[str, Any] | None = None,
) -> bool:
    """Record a check of one alert. The first check that finds it breached opens an
    incident and emails the operators (and, given ``webhook_event``, emits that event to
    the operators' webhook endpoints, in the same transaction); later breached checks only
    update the figures; the first clear check closes the incident and re-arms the alert.
    Returns whether this call opened an incident."""
    now = now or timezone.now()
    with transaction.atomic():
        # The row lock serialises two concurrent checks, so only one of them opens the incident.
        alert, _ = OperatorAlert.objects.select_for_update().get_or_create(name=name)
        opened = breached and alert.raised_at is None
        closed = not breached and alert.raised_at is not None
        if opened:
            alert.raised_at = now
            alert.incidents += 1
        elif closed:
            alert.raised_at = None
            alert.cleared_at = now
        alert.value = value
        alert.threshold = threshold
        alert.summary = summary[:300]
        alert.checked_at = now
        recipients = operator_emails() if opened else []
        if opened and recipients:
            alert.emailed_at = now
        alert.save()
        if opened and webhook_event:
            webhook_event_emit(event_type=webhook_event, summary=summary, **(webhook_details or {}))
    if opened:
        log.warning("alert %s raised: %s", name, summary)
        if not recipients:
            log.warning("alert %s: no active operator has an email address; nobody was emailed", name)
        else:
            try:
                _email(alert, recipients)
            except Exception:
                # The banner still shows the incident; the row says nobody was told by email.
                log.exception("alert %s: the email to operators failed", name)
                OperatorAlert.objects.filter(pk=alert.pk).update(emailed_at=None)
    elif closed:
        log.info("alert %s cleared", name)
    return opened


def _email(alert: OperatorAlert, recipients: list[str]) -> None:
    title = ALERT_TITLES.get(alert.name, alert.name)
    dashboard = settings.PORTAL_PUBLIC_URL.rstrip("/") + reverse("analytics:operator-dashboard")
    send_mail(
        subject=f"[Tollway] {title}",
        message=(
            f"{alert.summary}\n\n"
            f"Raised at {alert.raised_at:%Y-%m-%d %H:%M:%S} UTC. You will not be emailed again about this incident; "
            f"the operators' dashboard shows it until it clears:\n{dashboard}\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )
