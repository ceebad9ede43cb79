"""Analytics writes. Keyword-only arguments, one transaction each."""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from analytics import billing, conf, ledger, selectors
from analytics.metering import DAY_MS, HOUR_MS, aggregate
from analytics.models import (
    BillingPeriod,
    ConsumerStat,
    DeadLetter,
    DeprecationNotice,
    Granularity,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    ProcessedEvent,
    QuotaAlert,
    QuotaAlertSent,
    Reconciliation,
    Rollup,
    TrafficRollup,
    UsageAdjustment,
)
from gateway.contract import MeteringEvent

log = logging.getLogger(__name__)


# --- metering batches ---------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    received: int
    counted: int
    duplicates: int
    too_old: int
    dead_letters: int
    adjustments: int


_EVENT_ID = re.compile(r"[0-9a-f]{32}")


def normalise_event_id(raw: str) -> str:
    """32 lowercase hex digits (a UUID's hex form), or ValueError."""
    value = raw.replace("-", "").lower()
    if not _EVENT_ID.fullmatch(value):
        raise ValueError(f"event id {raw!r} is not a UUID")
    return value


def _day_to_month(day: int) -> date:
    d = date(1970, 1, 1) + timedelta(days=day)
    return date(d.year, d.month, 1)


def _closed_months(months: set[date]) -> set[date]:
    """Which of ``months`` are closed, holding a shared lock on their rows until
    commit: billing_period_close takes the exclusive lock, so a month cannot be
    closed between this check and this batch's commit (PostgreSQL; SQLite runs
    one writer at a time anyway)."""
    if not months:
        return set()
    BillingPeriod.objects.bulk_create([BillingPeriod(month=m) for m in months], ignore_conflicts=True)
    table = BillingPeriod._meta.db_table
    placeholders = ", ".join(["%s"] * len(months))
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT month FROM {table} WHERE month IN ({placeholders}) AND closed_at IS NOT NULL{lock}",  # noqa: S608
            [connection.ops.adapt_datefield_value(m) for m in sorted(months)],
        )
        rows = cur.fetchall()
    return {r[0] if isinstance(r[0], date) else date.fromisoformat(r[0]) for r in rows}


def keys_mark_used(events: list[MeteringEvent]) -> int:
    """Set ApiKey.last_used_at from admitted requests: the gateway never writes the
    database, so the metering stream is where the portal learns a key was used.
    One UPDATE per distinct key in the batch, and only ever forwards in time."""
    from portal.keys.models import ApiKey

    latest: dict[tuple[int, str], int] = {}
    for e in events:
        if e.decision == "allowed" and e.application_id and e.key_prefix:
            key = (e.application_id, e.key_prefix)
            latest[key] = max(latest.get(key, 0), e.ts)
    updated = 0
    for (application_id, prefix), ts in latest.items():
        used_at = datetime.fromtimestamp(ts / 1000, tz=UTC)
        updated += ApiKey.objects.filter(application_id=application_id, prefix=prefix).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=used_at)
        ).update(last_used_at=used_at)
    return updated


@transaction.atomic
def metering_batch_commit(
    *,
    events: list[MeteringEvent],
    consumer: str,
    last_stream_id: str = "",
    dead_letters: list[tuple[str, dict[str, str], str]] | None = None,
    now_ms: int | None = None,
) -> BatchResult:
    """Count a batch of events exactly once, all or nothing.

    The caller acknowledges the stream entries only after this returns: a crash
    before the commit leaves them pending (and claimed back later), a crash after
    it makes the retry find every id already in the ledger.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    oldest_ms = now_ms - conf.DEDUPE_DAYS * DAY_MS
    unique: dict[str, MeteringEvent] = {}
    too_old = 0
    for e in events:
        if e.ts < oldest_ms:
            too_old += 1
            continue
        unique.setdefault(normalise_event_id(e.id), e)
    fresh_ids = ledger.claim_event_ids([(e.ts // DAY_MS, eid) for eid, e in unique.items()])
    fresh = [e for eid, e in unique.items() if eid in fresh_ids]
    agg = aggregate(fresh)
    minute_floor = now_ms - conf.MINUTE_RETENTION_HOURS * HOUR_MS
    ledger.upsert_rollups({
        Granularity.MINUTE: agg.cells("m", min_minute_ts=minute_floor),
        Granularity.HOUR: agg.cells("h"),
        Granularity.DAY: agg.cells("d"),
    })
    ledger.upsert_rollups(
        {g: agg.traffic_cells(g, min_minute_ts=minute_floor) for g in Granularity.values}, ledger.TRAFFIC
    )

    by_month: dict[tuple[int, int, date], int] = defaultdict(int)
    for (sub_id, plan_id, day), n in agg.billable.items():
        by_month[(sub_id, plan_id, _day_to_month(day))] += n
    closed = _closed_months({m for _, _, m in by_month})
    adjustments = [
        UsageAdjustment(subscription_id=s, plan_id=p, usage_month=m, requests=n)
        for (s, p, m), n in by_month.items()
        if m in closed
    ]
    UsageAdjustment.objects.bulk_create(adjustments)

    if dead_letters:
        DeadLetter.objects.bulk_create(
            [DeadLetter(stream_id=sid, fields=f, error=err) for sid, f, err in dead_letters], ignore_conflicts=True
        )
    keys_mark_used(fresh)
    duplicates = len(events) - too_old - len(fresh)
    stat, _ = ConsumerStat.objects.select_for_update().get_or_create(consumer=consumer)
    stat.batches += 1
    stat.events_counted += len(fresh)
    stat.duplicates_skipped += duplicates
    stat.too_old_skipped += too_old
    if last_stream_id:
        stat.last_stream_id = last_stream_id
    stat.last_batch_at = timezone.now()
    stat.save()
    if too_old:
        log.warning("metering: %d events older than %d days refused", too_old, conf.DEDUPE_DAYS)
    return BatchResult(
        received=len(events),
        counted=len(fresh),
        duplicates=duplicates,
        too_old=too_old,
        dead_letters=len(dead_letters or []),
        adjustments=len(adjustments),
    )


# --- retention ----------------------------------------------------------------------------


@transaction.atomic
def rollups_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Drop fine-grained rollups and old dedupe ids past their retention.
    Day rollups are kept: invoices and long-range reports read them."""
    now = now or timezone.now()
    minute_cut = now - timedelta(hours=conf.MINUTE_RETENTION_HOURS)
    hour_cut = now - timedelta(days=conf.HOUR_RETENTION_DAYS)
    # Dedupe ids are kept a day longer than the window in which events are accepted.
    day_cut = int(now.timestamp() * 1000) // DAY_MS - conf.DEDUPE_DAYS - 1
    deleted = {
        "minute": Rollup.objects.filter(granularity=Granularity.MINUTE, bucket__lt=minute_cut)._raw_delete("default"),
        "hour": Rollup.objects.filter(granularity=Granularity.HOUR, bucket__lt=hour_cut)._raw_delete("default"),
        "traffic": TrafficRollup.objects.filter(
            Q(granularity=Granularity.MINUTE, bucket__lt=minute_cut)
            | Q(granularity=Granularity.HOUR, bucket__lt=hour_cut)
        )._raw_delete("default"),
        "event_ids": ProcessedEvent.objects.filter(day__lt=day_cut)._raw_delete("default"),
    }
    return deleted


# --- billing -------------------------------------------------------------------------------


def _terms(plan: Any) -> billing.PlanTerms:
    return billing.PlanTerms(
        plan_id=plan.pk,
        currency=plan.currency,
        monthly_price=plan.monthly_price,
        included_requests=plan.included_requests,
        overage_price_per_1000=plan.overage_price_per_1000,
    )


def _statement_lines(organization_id: int, month: date) -> dict[str, list[InvoiceLine]]:
    """Unsaved invoice lines per currency for one organization's month."""
    m_start, m_end = billing.month_bounds(month)
    spans = selectors.subscription_plan_spans(organization_id=organization_id, month=month)
    usage = selectors.billable_usage(subscription_ids=list({s.subscription.pk for s in spans}), month=month)
    # Usage the gateway could not attribute to a plan goes to the plan in force last.
    last_plan: dict[int, int] = {}
    for span in spans:
        last_plan[span.subscription.pk] = span.plan.pk
    merged: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (sub_id, plan_id), days in usage.items():
        target = plan_id or last_plan.get(sub_id, 0)
        for day, n in days.items():
            merged[(sub_id, target)][day] += n

    grouped: dict[tuple[int, int], list[selectors.PlanSpan]] = defaultdict(list)
    for span in spans:
        grouped[(span.subscription.pk, span.plan.pk)].append(span)
    lines: dict[str, list[InvoiceLine]] = defaultdict(list)
    for (sub_id, plan_id), plan_spans in grouped.items():
        plan = plan_spans[0].plan
        sub = plan_spans[0].subscription
        fraction = sum((billing.span_fraction(s.start, s.end, month) for s in plan_spans), Decimal(0))
        fraction = min(fraction, Decimal(1))
        daily = dict(sorted(merged.get((sub_id, plan_id), {}).items()))
        amounts = billing.price_line(terms=_terms(plan), fraction=fraction, used_requests=sum(daily.values()))
        start = max(min(s.start for s in plan_spans), m_start)
        end = min(max(s.end for s in plan_spans), m_end)
        lines[plan.currency].append(
            InvoiceLine(
                kind="usage",
                subscription_id=sub_id,
                application_id=sub.application_id,
                api_id=sub.api_id,
                plan_id=plan_id,
                description=f"{sub.api.name} · {plan.name} · {sub.application.name}",
                period_start=start,
                period_end=end,
                fraction=fraction.quantize(Decimal("0.000001")),
                base_fee=amounts.base_fee,
                included_requests=amounts.included_requests,
                used_requests=amounts.used_requests,
                overage_requests=amounts.overage_requests,
                overage_fee=amounts.overage_fee,
                amount=amounts.amount,
                daily_usage=daily,
            )
        )
    for line in _adjustment_lines(organization_id, month):
        lines[line.currency].append(line.line)
    return lines


@dataclass
class _AdjustmentLine:
    currency: str
    line: InvoiceLine
    adjustment_ids: list[int]


def _adjustment_lines(organization_id: int, month: date) -> list[_AdjustmentLine]:
    """Late usage of closed months, carried by this month's invoice: every
    adjustment not yet attached to a final invoice, created before this month ends."""
    from portal.plans.models import Plan, Subscription

    _, m_end = billing.month_bounds(month)
    subs = {
        s.pk: s
        for s in Subscription.objects.filter(application__organization_id=organization_id).select_related(
            "application", "api"
        )
    }
    pending = UsageAdjustment.objects.filter(
        subscription_id__in=list(subs), invoice__isnull=True, created_at__lt=m_end, usage_month__lt=month
    ).order_by("id")
    grouped: dict[tuple[int, int, date], list[UsageAdjustment]] = defaultdict(list)
    for adj in pending:
        grouped[(adj.subscription_id, adj.plan_id, adj.usage_month)].append(adj)
    out: list[_AdjustmentLine] = []
    for (sub_id, plan_id, usage_month), adjs in grouped.items():
        sub = subs[sub_id]
        original = (
            InvoiceLine.objects.filter(
                invoice__month=usage_month, invoice__status=InvoiceStatus.FINAL, subscription_id=sub_id,
                kind="usage", plan_id=plan_id or sub.plan_id,
            ).first()
        )
        plan = Plan.objects.get(pk=original.plan_id if original else (plan_id or sub.plan_id))
        already = (
            UsageAdjustment.objects.filter(
                subscription_id=sub_id, plan_id=plan_id, usage_month=usage_month, invoice__isnull=False
            ).aggregate(n=Sum("requests"))["n"]
            or 0
        )
        late = sum(a.requests for a in adjs)
        amounts = billing.price_adjustment(
            terms=_terms(plan),
            included=original.included_requests if original else 0,
            billed_used=(original.used_requests if original else 0) + already,
            late_requests=late,
        )
        m_start, m_stop = billing.month_bounds(usage_month)
        out.append(
            _AdjustmentLine(
                currency=plan.currency,
                adjustment_ids=[a.pk for a in adjs],
                line=InvoiceLine(
                    kind="adjustment",
                    subscription_id=sub_id,
                    application_id=sub.application_id,
                    api_id=sub.api_id,
                    plan_id=plan.pk,
                    description=f"Late usage for {usage_month:%Y-%m}: {sub.api.name} · {plan.name}",
                    period_start=m_start,
                    period_end=m_stop,
                    fraction=Decimal(0),
                    base_fee=amounts.base_fee,
                    included_requests=0,
                    used_requests=late,
                    overage_requests=amounts.overage_requests,
                    overage_fee=amounts.overage_fee,
                    amount=amounts.amount,
                    daily_usage={},
                ),
            )
        )
    return out


def _write_invoice(organization_id: int, month: date, currency: str, lines: list[InvoiceLine]) -> Invoice:
    invoice, _ = Invoice.objects.select_for_update().get_or_create(
        organization_id=organization_id, month=month, currency=currency
    )
    if invoice.status == InvoiceStatus.FINAL:
        return invoice
    invoice.lines.all().delete()
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    invoice.total = billing.invoice_total([ln.amount for ln in lines], currency)
    invoice.save()
    return invoice


@transaction.atomic
def invoice_refresh(*, organization_id: int, month: date) -> list[Invoice]:
    """Recompute the organization's draft invoices for ``month`` from the rollups.
    Final invoices are never touched."""
    period = BillingPeriod.objects.filter(month=month).first()
    if period and period.closed_at:
        return list(Invoice.objects.filter(organization_id=organization_id, month=month))
    lines = _statement_lines(organization_id, month)
    invoices = [_write_invoice(organization_id, month, cur, ls) for cur, ls in sorted(lines.items())]
    # A currency that no longer has lines (e.g. a cancelled subscription) loses its draft.
    Invoice.objects.filter(organization_id=organization_id, month=month, status=InvoiceStatus.DRAFT).exclude(
        currency__in=list(lines)
    ).delete()
    return invoices


@transaction.atomic
def billing_period_close(*, month: date, now: datetime | None = None) -> list[Invoice]:
    """Finalise every organization's invoices for ``month``. Idempotent: a second
    run finds the period closed and returns the same invoices unchanged."""
    from portal.accounts.models import Organization

    now = now or timezone.now()
    month = billing.month_start(month)
    BillingPeriod.objects.get_or_create(month=month)
    # Exclusive row lock: waits for metering batches holding the shared lock on this
    # month, and makes later batches see the month closed (-> adjustment path).
    period = BillingPeriod.objects.select_for_update().get(month=month)
    if period.closed_at:
        return list(Invoice.objects.filter(month=month).order_by("organization_id", "currency"))
    org_ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))
    finals: list[Invoice] = []
    for org_id in org_ids:
        lines = _statement_lines(org_id, month)
        adjustments = _adjustment_lines(org_id, month)
        for currency, cur_lines in sorted(lines.items()):
            invoice = _write_invoice(org_id, month, currency, cur_lines)
            invoice.status = InvoiceStatus.FINAL
            invoice.finalized_at = now
            invoice.number = f"TW-{month:%Y%m}-{org_id:05d}-{currency}"
            invoice.save()
            finals.append(invoice)
        # Mark the carried adjustments with the invoice that billed them.
        for adj in adjustments:
            inv = next((i for i in finals if i.organization_id == org_id and i.currency == adj.currency), None)
            if inv is not None:
                UsageAdjustment.objects.filter(pk__in=adj.adjustment_ids).update(invoice=inv)
        Invoice.objects.filter(organization_id=org_id, month=month, status=InvoiceStatus.DRAFT).delete()
    period.closed_at = now
    period.save()
    return finals


def billing_close_due(*, now: datetime | None = None) -> list[date]:
    """Close every month that ended more than CLOSE_GRACE_S ago and is still open."""
    now = now or timezone.now()
    previous = billing.month_start(now - timedelta(seconds=conf.CLOSE_GRACE_S))
    candidates = set(
        BillingPeriod.objects.filter(closed_at__isnull=True, month__lt=previous).values_list("month", flat=True)
    )
    prev_month = billing.month_start(billing.month_bounds(previous)[0] - timedelta(days=1))
    if not BillingPeriod.objects.filter(month=prev_month).exists():
        candidates.add(prev_month)
    closed = []
    for month in sorted(candidates):
        billing_period_close(month=month, now=now)
        closed.append(month)
    return closed


# --- quota alerts --------------------------------------------------------------------------


@transaction.atomic
def quota_alert_set(*, application: Any, user: Any, percentages: list[int]) -> QuotaAlert:
    cleaned = sorted({int(p) for p in percentages})
    if any(p < 1 or p > 1000 for p in cleaned):
        from portal.core.errors import ApplicationError

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
    for usage in selectors.quota_usage(application_id=application_id, now=now):
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


# --- reconciliation ------------------------------------------------------------------------


@transaction.atomic
def reconciliation_record(*, day: date, gateway_counts: dict[int, int | None]) -> int:
    """Store, per subscription, the gateway's admitted count for ``day`` beside the rollups'."""
    rollups = selectors.admitted_by_subscription_day(day=day)
    # Subscriptions with no counter and no traffic that day have nothing to compare.
    subs = {s for s, n in gateway_counts.items() if n is not None} | set(rollups)
    for sub_id in subs:
        Reconciliation.objects.update_or_create(
            subscription_id=sub_id,
            day=day,
            defaults={"gateway_admitted": gateway_counts.get(sub_id), "rollup_admitted": rollups.get(sub_id, 0)},
        )
    return len(subs)


# --- deprecation ---------------------------------------------------------------------------


@transaction.atomic
def deprecation_notify(*, api_id: int, version: str, actor: Any, days: int = 30) -> list[DeprecationNotice]:
    """Email the owners and admins of every application that called a deprecated
    version in the last ``days`` days."""
    from portal.accounts.models import Membership, Role
    from portal.catalog.models import ApiVersion, LifecycleState
    from portal.keys.models import Application

    ver = ApiVersion.objects.select_related("api", "successor").get(api_id=api_id, label=version)
    if ver.state != LifecycleState.DEPRECATED:
        from portal.core.errors import Conflict

        raise Conflict("Only a deprecated version's callers are notified.")
    successor = f" Please move to {ver.successor.label}." if ver.successor else ""
    sunset = f" It will be retired on {ver.sunset_at:%Y-%m-%d}." if ver.sunset_at else ""
    callers = selectors.deprecated_callers(since=timezone.now() - timedelta(days=days), api_id=api_id, version=version)
    notices = []
    for row in callers:
        app = Application.objects.filter(pk=row["application_id"]).first()
        if app is None:
            continue
        emails = sorted(
            Membership.objects.filter(organization_id=app.organization_id, role__in=[Role.OWNER, Role.ADMIN])
            .values_list("user__email", flat=True)
        )
        if not emails:
            continue
        transaction.on_commit(
            lambda app=app, emails=emails, n=row["requests"]: send_mail(
                subject=f"[Tollway] {ver.api.name} {ver.label} is deprecated",
                message=(
                    f"Your application {app.name} made {n:,} requests to {ver.api.name} {ver.label} "
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


def utc_today() -> date:
    return datetime.now(tz=UTC).date()
