"""Reports writes: the reconciliation snapshot (keyword-only, one transaction)."""

from __future__ import annotations

from datetime import date

from django.db import transaction

from analytics.models import Reconciliation
from analytics.reports.selectors import admitted_by_subscription_day


@transaction.atomic
def reconciliation_record(*, day: date, gateway_counts: dict[int, int | None]) -> int:
    """Store, per subscription, the gateway's admitted count for ``day`` beside the rollups'."""
    rollups = admitted_by_subscription_day(day=day)
    # Subscriptions with no counter and no traffic that day have nothing to compare.
    subs = {s for s, n in gateway_counts.items() if n is not None} | set(rollups)
    for sub_id in subs:
        Reconciliation.objects.update_or_create(
            subscription_id=sub_id,
            day=day,
            defaults={"gateway_admitted": gateway_counts.get(sub_id), "rollup_admitted": rollups.get(sub_id, 0)},
        )
    return len(subs)
