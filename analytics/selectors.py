"""Analytics reads. Anything a developer sees is scoped by ``rollups_for(user)``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from analytics import billing
from analytics.metering import percentile_from_histogram
from analytics.models import LATENCY_FIELDS, Granularity, Invoice, Reconciliation, Rollup

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)

# --- scoping -------------------------------------------------------------------------------


def is_operator(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


def is_finance(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and (user.is_staff or user.groups.filter(name="finance").exists())
    )


def application_ids_for(user: Any) -> list[int] | None:
    """None means every application (operators)."""
    from portal.keys.selectors import applications_for

    if is_operator(user):
        return None
    return list(applications_for(user).values_list("pk", flat=True))


def rollups_for(user: Any) -> QuerySet[Rollup]:
    if not getattr(user, "is_authenticated", False):
        return Rollup.objects.none()
    app_ids = application_ids_for(user)
    if app_ids is None:
        return Rollup.objects.all()
    return Rollup.objects.filter(application_id__in=app_ids)


def invoices_for(user: Any) -> QuerySet[Invoice]:
    from portal.accounts.selectors import organization_ids_for

    if not getattr(user, "is_authenticated", False):
        return Invoice.objects.none()
    qs = Invoice.objects.select_related("organization")
    if is_finance(user):
        return qs
    return qs.filter(organization_id__in=organization_ids_for(user))


# --- time ranges ---------------------------------------------------------------------------

RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    granularity: str
    label: str


def time_range(label: str | None, start: datetime | None = None, end: datetime | None = None) -> TimeRange:
    """A preset ("1h", "24h", "7d", "30d") or a custom [start, end). The rollup
    granularity keeps a chart under a few hundred points and within retention."""
    now = timezone.now()
    if start is not None:
        end = end or now
        label = "custom"
    else:
        label = label if label in RANGES else "24h"
        end = now
        start = now - RANGES[label]
    span = end - start
    if span <= timedelta(hours=6) and start >= now - timedelta(hours=47):
        gran = Granularity.MINUTE
    elif span <= timedelta(days=14):
        gran = Granularity.HOUR
    else:
        gran = Granularity.DAY
    return TimeRange(start=start, end=end, granularity=gran, label=label)


def _floor(moment: datetime, granularity: str) -> datetime:
    if granularity == Granularity.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if granularity == Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def in_range(qs: QuerySet[Any], tr: TimeRange) -> QuerySet[Any]:
    return qs.filter(granularity=tr.granularity, bucket__gte=_floor(tr.start, tr.granularity), bucket__lt=tr.end)


# --- dashboard figures -----------------------------------------------------------------------

_LAT_SUMS = {f: Sum(f) for f in LATENCY_FIELDS}


@dataclass(frozen=True)
class Totals:
    requests: int
    admitted: int
    errors: int
    bytes_in: int
    bytes_out: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def totals(qs: QuerySet[Rollup]) -> Totals:
    agg = qs.aggregate(
        requests=Sum("requests"), admitted=Sum("admitted"), errors=Sum("errors"),
        bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"), **_LAT_SUMS,
    )
    hist = [int(agg[f] or 0) for f in LATENCY_FIELDS]
    return Totals(
        requests=int(agg["requests"] or 0),
        admitted=int(agg["admitted"] or 0),
        errors=int(agg["errors"] or 0),
        bytes_in=int(agg["bytes_in"] or 0),
        bytes_out=int(agg["bytes_out"] or 0),
        p50_ms=percentile_from_histogram(hist, 0.50),
        p95_ms=percentile_from_histogram(hist, 0.95),
        p99_ms=percentile_from_histogram(hist, 0.99),
    )


def series(qs: QuerySet[Rollup], *, latency: bool = True) -> list[dict[str, Any]]:
    """Per bucket: requests, errors and (optionally) p50/p95/p99."""
    extra = _LAT_SUMS if latency else {}
    rows = qs.values("bucket").annotate(requests=Sum("requests"), errors=Sum("errors"), **extra).order_by("bucket")
    out = []
    for row in rows:
        point = {"bucket": row["bucket"], "requests": int(row["requests"]), "errors": int(row["errors"])}
        if latency:
            hist = [int(row[f] or 0) for f in LATENCY_FIELDS]
            point.update(
                p50_ms=percentile_from_histogram(hist, 0.5),
                p95_ms=percentile_from_histogram(hist, 0.95),
                p99_ms=percentile_from_histogram(hist, 0.99),
            )
        out.append(point)
    return out


def totals_from_series(points: list[dict[str, Any]], hist_rows: list[list[int]], extra: dict[str, int]) -> Totals:
    hist = [sum(col) for col in zip(*hist_rows, strict=True)] if hist_rows else [0] * len(LATENCY_FIELDS)
    return Totals(
        requests=sum(p["requests"] for p in points), errors=sum(p["errors"] for p in points),
        admitted=extra.get("admitted", 0), bytes_in=extra.get("bytes_in", 0), bytes_out=extra.get("bytes_out", 0),
        p50_ms=percentile_from_histogram(hist, 0.50), p95_ms=percentile_from_histogram(hist, 0.95),
        p99_ms=percentile_from_histogram(hist, 0.99),
    )


@dataclass(frozen=True)
class Dashboard:
    series: list[dict[str, Any]]
    totals: Totals
    statuses: list[dict[str, Any]]
    tops: dict[str, list[dict[str, Any]]]


def top_lists_range(tr: TimeRange) -> TimeRange:
    """Top lists read whole hours (ranges up to two days) or whole days: coarser
    rows, far fewer of them, at the price of a range that starts at the hour or
    day boundary before ``tr.start``."""
    gran = Granularity.HOUR if tr.end - tr.start <= timedelta(days=2) else Granularity.DAY
    return TimeRange(start=_floor(tr.start, gran), end=tr.end, granularity=gran, label=tr.label)


def dashboard(qs: QuerySet[Any], tops_qs: QuerySet[Rollup], n: int = 10) -> Dashboard:
    """Everything the operator dashboard shows, in two scans: ``qs`` (TrafficRollup,
    or Rollup when filtered by application) grouped by bucket and status class gives
    the series, totals, latency and status breakdown; ``tops_qs`` grouped by
    (API, version, application) gives every top list."""
    # One scan for the series, the totals and the status breakdown: grouped by
    # bucket and status class, folded here (a few thousand rows at most).
    rows = list(
        qs.values("bucket", "status_class").annotate(
            requests=Sum("requests"), errors=Sum("errors"), admitted=Sum("admitted"),
            bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"), **_LAT_SUMS,
        ).order_by("bucket")
    )
    per_bucket: dict[Any, dict[str, Any]] = {}
    per_status: dict[int, int] = defaultdict(int)
    extra = {"admitted": 0, "bytes_in": 0, "bytes_out": 0}
    for row in rows:
        cell = per_bucket.setdefault(
            row["bucket"], {"requests": 0, "errors": 0, "hist": [0] * len(LATENCY_FIELDS)}
        )
        cell["requests"] += int(row["requests"])
        cell["errors"] += int(row["errors"])
        for i, f in enumerate(LATENCY_FIELDS):
            cell["hist"][i] += int(row[f] or 0)
        per_status[row["status_class"]] += int(row["requests"])
        for k in extra:
            extra[k] += int(row[k] or 0)
    points, hists = [], []
    for bucket, cell in per_bucket.items():
        hist = cell["hist"]
        hists.append(hist)
        points.append({
            "bucket": bucket, "requests": cell["requests"], "errors": cell["errors"],
            "p50_ms": percentile_from_histogram(hist, 0.5), "p95_ms": percentile_from_histogram(hist, 0.95),
            "p99_ms": percentile_from_histogram(hist, 0.99),
        })
    statuses = [{"status": f"{sc}xx" if sc else "none", "requests": n} for sc, n in sorted(per_status.items())]
    dims = list(tops_qs.values("api_id", "version", "application_id").annotate(
        requests=Sum("requests"), errors=Sum("errors")).order_by())
    tops: dict[str, list[dict[str, Any]]] = {}
    for dimension, key in (("api", ("api_id",)), ("version", ("api_id", "version")),
                           ("application", ("application_id",))):
        folded: dict[tuple[Any, ...], dict[str, Any]] = {}
        for d in dims:
            k = tuple(d[f] for f in key)
            acc = folded.setdefault(k, {**{f: d[f] for f in key}, "requests": 0, "errors": 0})
            acc["requests"] += int(d["requests"])
            acc["errors"] += int(d["errors"])
        ranked = sorted(folded.values(), key=lambda r: (-r["requests"], *(str(r[f]) for f in key)))
        if dimension == "application":
            tops["organization"] = _fold_organizations(ranked, n)
        ranked = ranked[:n]
        _label(ranked, dimension)
        tops[dimension] = ranked
    return Dashboard(series=points, totals=totals_from_series(points, hists, extra), statuses=statuses,
                     tops=tops)


def _fold_organizations(per_app: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    from portal.keys.models import Application

    app_org = dict(
        Application.objects.filter(pk__in=[r["application_id"] for r in per_app]).values_list(
            "pk", "organization__name"
        )
    )
    orgs: dict[str, dict[str, int]] = defaultdict(lambda: {"requests": 0, "errors": 0})
    for r in per_app:
        name = app_org.get(r["application_id"], "(anonymous)")
        orgs[name]["requests"] += r["requests"]
        orgs[name]["errors"] += r["errors"]
    ranked = sorted(orgs.items(), key=lambda kv: (-kv[1]["requests"], kv[0]))[:n]
    return [{"label": name, **vals} for name, vals in ranked]


def by_status(qs: QuerySet[Rollup]) -> list[dict[str, Any]]:
    rows = qs.values("status_class").annotate(requests=Sum("requests")).order_by("status_class")
    return [{"status": f"{r['status_class']}xx" if r["status_class"] else "none", "requests": int(r["requests"])}
            for r in rows]


def _label(rows: list[dict[str, Any]], dimension: str) -> None:
    from portal.catalog.models import Api
    from portal.keys.models import Application

    if dimension in ("api", "version"):
        names = dict(Api.objects.filter(pk__in=[r["api_id"] for r in rows]).values_list("pk", "name"))
        for r in rows:
            name = names.get(r["api_id"], "(unknown route)")
            r["label"] = f"{name} {r['version']}" if dimension == "version" else name
    else:
        names = dict(Application.objects.filter(pk__in=[r["application_id"] for r in rows]).values_list("pk", "name"))
        for r in rows:
            r["label"] = names.get(r["application_id"], "(anonymous)")


# --- quota ---------------------------------------------------------------------------------


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
    from portal.plans.models import LIVE_SUBSCRIPTION_STATES, Subscription

    now = now or timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    m_start, m_end = billing.month_bounds(billing.month_start(now))
    out = []
    subs = Subscription.objects.filter(
        application_id=application_id, status__in=LIVE_SUBSCRIPTION_STATES
    ).select_related("plan", "api")
    for sub in subs:
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


# --- billing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSpan:
    subscription: Any
    plan: Any
    start: datetime
    end: datetime


def subscription_plan_spans(*, organization_id: int, month: date) -> list[PlanSpan]:
    """Which plan each of the organization's subscriptions was on, and when, within
    ``month``. Built from the PlanChange history; a subscription without history
    (created before it was kept) counts from approval or creation."""
    from portal.plans.models import PlanChange, Subscription, SubscriptionStatus

    m_start, m_end = billing.month_bounds(month)
    subs = (
        Subscription.objects.filter(application__organization_id=organization_id, created_at__lt=m_end)
        .exclude(Q(cancelled_at__lt=m_start))
        .select_related("plan", "api", "application")
        .order_by("pk")
    )
    changes: dict[int, list[Any]] = defaultdict(list)
    for ch in PlanChange.objects.filter(subscription__in=subs).select_related("to_plan").order_by("changed_at", "pk"):
        changes[ch.subscription_id].append(ch)
    spans: list[PlanSpan] = []
    for sub in subs:
        stop = sub.cancelled_at if sub.status == SubscriptionStatus.CANCELLED and sub.cancelled_at else FAR_FUTURE
        history = changes.get(sub.pk)
        if not history:
            if sub.status == SubscriptionStatus.PENDING or (
                sub.status == SubscriptionStatus.CANCELLED and sub.approved_at is None
            ):
                continue
            history_spans = [(sub.plan, sub.approved_at or sub.created_at)]
        else:
            history_spans = [(ch.to_plan, ch.changed_at) for ch in history]
        for i, (plan, start) in enumerate(history_spans):
            end = history_spans[i + 1][1] if i + 1 < len(history_spans) else stop
            end = min(end, stop)
            if end <= m_start or start >= m_end or end <= start:
                continue
            spans.append(PlanSpan(sub, plan, max(start, m_start), min(end, m_end)))
    return spans


def billable_usage(*, subscription_ids: list[int], month: date) -> dict[tuple[int, int], dict[str, int]]:
    """(subscription_id, plan_id) -> ISO day -> admitted requests, from day rollups."""
    if not subscription_ids:
        return {}
    m_start, m_end = billing.month_bounds(month)
    rows = (
        Rollup.objects.filter(
            granularity=Granularity.DAY, subscription_id__in=subscription_ids, bucket__gte=m_start, bucket__lt=m_end
        )
        .values("subscription_id", "plan_id", "bucket")
        .annotate(n=Sum("admitted"))
    )
    out: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for r in rows:
        if r["n"]:
            out[(r["subscription_id"], r["plan_id"])][r["bucket"].date().isoformat()] = int(r["n"])
    return out


def admitted_by_subscription_day(*, day: date) -> dict[int, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = (
        Rollup.objects.filter(granularity=Granularity.DAY, bucket=start)
        .exclude(subscription_id=0)
        .values("subscription_id")
        .annotate(n=Sum("admitted"))
    )
    return {r["subscription_id"]: int(r["n"]) for r in rows}


def revenue_report(*, month: date) -> dict[str, list[dict[str, Any]]]:
    """Revenue of ``month``'s invoices (draft or final) by API, plan and organization."""
    from analytics.models import InvoiceLine
    from portal.catalog.models import Api
    from portal.plans.models import Plan

    lines = InvoiceLine.objects.filter(invoice__month=month)
    out: dict[str, list[dict[str, Any]]] = {}
    api_names = dict(Api.objects.values_list("pk", "name"))
    plan_names = dict(Plan.objects.values_list("pk", "name"))
    for key, field, names in (("api", "api_id", api_names), ("plan", "plan_id", plan_names)):
        rows = lines.values(field, "invoice__currency").annotate(amount=Sum("amount"), requests=Sum("used_requests"))
        out[key] = sorted(
            (
                {"label": names.get(r[field], f"#{r[field]}"), "currency": r["invoice__currency"],
                 "amount": r["amount"], "requests": int(r["requests"] or 0)}
                for r in rows
            ),
            key=lambda r: (-r["amount"], r["label"]),
        )
    rows = lines.values("invoice__organization__name", "invoice__currency", "invoice__status").annotate(
        amount=Sum("amount"), requests=Sum("used_requests")
    )
    out["organization"] = sorted(
        (
            {"label": r["invoice__organization__name"], "currency": r["invoice__currency"],
             "status": r["invoice__status"], "amount": r["amount"], "requests": int(r["requests"] or 0)}
            for r in rows
        ),
        key=lambda r: (-r["amount"], r["label"]),
    )
    return out


def reconciliation_rows(*, month: date, subscription_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Per subscription and day: gateway admitted count, rollups, invoice; with a flag
    when they disagree. The rollup figure is read live; the gateway figure is the
    last snapshot the reconcile task took."""
    from analytics.models import InvoiceLine

    m_start, m_end = billing.month_bounds(month)
    rollups = Rollup.objects.filter(granularity=Granularity.DAY, bucket__gte=m_start, bucket__lt=m_end).exclude(
        subscription_id=0
    )
    recs = Reconciliation.objects.filter(day__gte=m_start.date(), day__lt=m_end.date())
    lines = InvoiceLine.objects.filter(invoice__month=month, kind="usage")
    if subscription_ids is not None:
        rollups = rollups.filter(subscription_id__in=subscription_ids)
        recs = recs.filter(subscription_id__in=subscription_ids)
        lines = lines.filter(subscription_id__in=subscription_ids)
    table: dict[tuple[int, date], dict[str, Any]] = {}

    def row(sub: int, day: date) -> dict[str, Any]:
        return table.setdefault(
            (sub, day), {"subscription_id": sub, "day": day, "gateway": None, "rollups": 0, "invoice": 0}
        )

    for r in rollups.values("subscription_id", "bucket").annotate(n=Sum("admitted")):
        row(r["subscription_id"], r["bucket"].date())["rollups"] = int(r["n"])
    for rec in recs:
        row(rec.subscription_id, rec.day)["gateway"] = rec.gateway_admitted
    for line in lines.values("subscription_id", "daily_usage"):
        for day, n in (line["daily_usage"] or {}).items():
            row(line["subscription_id"], date.fromisoformat(day))["invoice"] += int(n)
    out = sorted(table.values(), key=lambda r: (r["day"], r["subscription_id"]), reverse=True)
    for r in out:
        figures = {r["rollups"], r["invoice"]} | ({r["gateway"]} if r["gateway"] is not None else set())
        r["mismatch"] = len(figures) > 1
    return out


def deprecated_callers(*, since: datetime, api_id: int | None = None, version: str | None = None,
                       app_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Who still calls deprecated versions, and how much, by application."""
    from portal.catalog.models import ApiVersion, LifecycleState
    from portal.keys.models import Application

    versions = ApiVersion.objects.filter(state=LifecycleState.DEPRECATED).select_related("api", "successor")
    if api_id is not None:
        versions = versions.filter(api_id=api_id)
    if version is not None:
        versions = versions.filter(label=version)
    cond = Q()
    meta = {}
    for v in versions:
        cond |= Q(api_id=v.api_id, version=v.label)
        meta[(v.api_id, v.label)] = v
    if not meta:
        return []
    qs = Rollup.objects.filter(cond, granularity=Granularity.DAY, bucket__gte=_floor(since, Granularity.DAY))
    if app_ids is not None:
        qs = qs.filter(application_id__in=app_ids)
    rows = list(
        qs.exclude(application_id=0)
        .values("api_id", "version", "application_id")
        .annotate(requests=Sum("requests"), days=Count("bucket", distinct=True))
        .order_by("-requests")
    )
    apps = {
        a.pk: a for a in Application.objects.filter(pk__in=[r["application_id"] for r in rows]).select_related(
            "organization"
        )
    }
    for r in rows:
        v = meta[(r["api_id"], r["version"])]
        app = apps.get(r["application_id"])
        r.update(
            api_name=v.api.name, sunset_at=v.sunset_at, successor=v.successor.label if v.successor else "",
            application=app.name if app else f"#{r['application_id']}",
            organization=app.organization.name if app else "",
            requests=int(r["requests"]),
        )
    return rows
