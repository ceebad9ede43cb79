"""Reports reads: dashboards, usage over time, reconciliation.

Anything a developer sees is scoped by ``rollups_for(user)``. Portal data (names,
applications a user may see) comes through the portal's selectors.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, QuerySet, Sum
from django.utils import timezone

from analytics.billing.rules import month_bounds
from analytics.models import (
    LATENCY_BUCKETS_MS,
    LATENCY_FIELDS,
    Granularity,
    InvoiceLine,
    Reconciliation,
    Rollup,
    TrafficRollup,
)
from portal.accounts.selectors import is_operator
from portal.catalog.selectors import api_names
from portal.keys.selectors import application_names, application_organization_names, applications_for

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from portal.accounts.models import User

# Rollup or TrafficRollup: both have granularity and bucket.
_R = TypeVar("_R", bound=Model)

# --- latency -------------------------------------------------------------------------------


def percentile_from_histogram(counts: list[int], q: float) -> float | None:
    """Estimate the q-quantile (0 < q <= 1) from the rollups' latency histogram
    (ingest.metering fills it, LATENCY_BUCKETS_MS bounds it) by linear
    interpolation inside the bucket; the open-ended last bucket reports its
    lower bound. None for an empty histogram."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = LATENCY_BUCKETS_MS[i - 1] if i > 0 else 0.0
            if i >= len(LATENCY_BUCKETS_MS):
                return float(lower)
            upper = LATENCY_BUCKETS_MS[i]
            return float(lower + (upper - lower) * (rank - seen) / count)
        seen += count
    return float(LATENCY_BUCKETS_MS[-1])


# --- scoping -------------------------------------------------------------------------------


def application_ids_for(user: User | AnonymousUser) -> list[int] | None:
    """None means every application (operators)."""
    if is_operator(user):
        return None
    return list(applications_for(user).values_list("pk", flat=True))


def rollups_for(user: User | AnonymousUser) -> QuerySet[Rollup]:
    if not getattr(user, "is_authenticated", False):
        return Rollup.objects.none()
    app_ids = application_ids_for(user)
    if app_ids is None:
        return Rollup.objects.all()
    return Rollup.objects.filter(application_id__in=app_ids)


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


def floor_to(moment: datetime, granularity: str) -> datetime:
    if granularity == Granularity.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if granularity == Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def in_range(qs: QuerySet[_R], tr: TimeRange) -> QuerySet[_R]:
    return qs.filter(granularity=tr.granularity, bucket__gte=floor_to(tr.start, tr.granularity), bucket__lt=tr.end)


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
        # The latency sums are annotated under computed names (_LAT_SUMS), which the stubs cannot see.
        values: Mapping[str, Any] = row
        point = {"bucket": values["bucket"], "requests": int(values["requests"]), "errors": int(values["errors"])}
        if latency:
            hist = [int(values[f] or 0) for f in LATENCY_FIELDS]
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
    return TimeRange(start=floor_to(tr.start, gran), end=tr.end, granularity=gran, label=tr.label)


def dashboard(qs: QuerySet[Any], tops_qs: QuerySet[Rollup], n: int = 10) -> Dashboard:
    """Everything the operator dashboard shows, in two scans: ``qs`` (TrafficRollup,
    or Rollup when filtered by application) grouped by bucket and status class gives
    the series, totals, latency and status breakdown; ``tops_qs`` grouped by
    (API, version, application) gives every top list. ``qs`` is typed loosely: its rows
    are read by the computed latency field names, which the stubs' row types cannot name."""
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
    dims: list[Mapping[str, Any]] = list(tops_qs.values("api_id", "version", "application_id").annotate(
        requests=Sum("requests"), errors=Sum("errors")).order_by())
    tops: dict[str, list[dict[str, Any]]] = {}
    for dimension, key in (("api", ("api_id",)), ("version", ("api_id", "version")),
                           ("application", ("application_id",))):
        folded: dict[tuple[Any, ...], dict[str, Any]] = {}
        for d in dims:
            group = tuple(d[f] for f in key)
            acc = folded.setdefault(group, {**{f: d[f] for f in key}, "requests": 0, "errors": 0})
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
    app_org = application_organization_names(ids=[r["application_id"] for r in per_app])
    orgs: dict[str, dict[str, int]] = defaultdict(lambda: {"requests": 0, "errors": 0})
    for r in per_app:
        name = app_org.get(r["application_id"], "(anonymous)")
        orgs[name]["requests"] += r["requests"]
        orgs[name]["errors"] += r["errors"]
    ranked = sorted(orgs.items(), key=lambda kv: (-kv[1]["requests"], kv[0]))[:n]
    return [{"label": name, **vals} for name, vals in ranked]


def _label(rows: list[dict[str, Any]], dimension: str) -> None:
    if dimension in ("api", "version"):
        names = api_names(ids=[r["api_id"] for r in rows])
        for r in rows:
            name = names.get(r["api_id"], "(unknown route)")
            r["label"] = f"{name} {r['version']}" if dimension == "version" else name
    else:
        names = application_names(ids=[r["application_id"] for r in rows])
        for r in rows:
            r["label"] = names.get(r["application_id"], "(anonymous)")


# --- reconciliation ----------------------------------------------------------------------


def admitted_by_subscription_day(*, day: date) -> dict[int, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = (
        Rollup.objects.filter(granularity=Granularity.DAY, bucket=start)
        .exclude(subscription_id=0)
        .values("subscription_id")
        .annotate(n=Sum("admitted"))
    )
    return {r["subscription_id"]: int(r["n"]) for r in rows}


def reconciliation_rows(*, month: date, subscription_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Per subscription and day: gateway admitted count, rollups, invoice; with a flag
    when they disagree. The rollup figure is read live; the gateway figure is the
    last snapshot the reconcile task took."""
    m_start, m_end = month_bounds(month)
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

    for agg in rollups.values("subscription_id", "bucket").annotate(n=Sum("admitted")):
        row(agg["subscription_id"], agg["bucket"].date())["rollups"] = int(agg["n"])
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


def version_requests_since(*, api_id: int, version: str, since: datetime) -> int:
    """Requests to one API version from the hour that holds ``since`` on (hourly buckets:
    a safety check before retiring may count up to an hour too much, never too little)."""
    total = TrafficRollup.objects.filter(
        granularity=Granularity.HOUR, bucket__gte=floor_to(since, Granularity.HOUR), api_id=api_id, version=version
    ).aggregate(n=Sum("requests"))["n"]
    return int(total or 0)


# --- developer usage: reconciliation and breakdowns ------------------------------------------

# Rollups keep whether the gateway admitted a request (decision "allowed") and the
# status it sent, not the decision itself. For a request the gateway did not admit,
# the status names the reason: the gateway's own refusals each have their code.
REJECTION_REASONS: dict[int, str] = {
    400: "Bad request (malformed at the gateway)",
    401: "Unauthenticated (no key, or an unknown or revoked one)",
    403: "Forbidden (no active subscription, suspended, or IP not allowed)",
    404: "Unknown API or version",
    405: "Method not allowed",
    410: "Gone (retired version)",
    413: "Request too large",
    429: "Rate limit or quota exceeded",
    503: "Gateway not ready",
}
# Not admitted, answered by the gateway on the upstream's behalf: it could not be
# reached or timed out. Not billed, but the API's failure, not the caller's.
UPSTREAM_FAILURE_STATUSES = frozenset({502, 504})
# Endpoints shown one by one; the rest are folded into one row.
MAX_ENDPOINT_ROWS = 20


@dataclass(frozen=True)
class UsageReconciliation:
    requests: int
    admitted: int
    admitted_ok: int  # status 1xx-3xx
    admitted_client_errors: int  # 4xx from the API itself
    admitted_upstream_errors: int  # 5xx from the API
    admitted_unknown: int  # status 0: admitted, outcome never learnt (billed)
    rejected: int
    rejected_by_reason: list[dict[str, Any]]
    upstream_unreachable: int  # not admitted: 502/504 from the gateway
    errors: int  # every status >= 400: what the error rate counts

    @property
    def upstream_errors(self) -> int:
        return self.admitted_upstream_errors + self.upstream_unreachable


@dataclass(frozen=True)
class UsageBreakdown:
    reconciliation: UsageReconciliation
    by_endpoint: list[dict[str, Any]]
    by_status: list[dict[str, Any]]
    by_key: list[dict[str, Any]]


def usage_breakdown(qs: QuerySet[Rollup]) -> UsageBreakdown:
    """Reconciliation and breakdowns from hour or day rows (``qs``, already scoped and
    in range: minute rows carry no endpoint or status). One scan, grouped by
    (endpoint, status, key prefix), folded here: a bounded number of rows per key."""
    rows = list(qs.values("endpoint", "status", "status_class", "key_prefix").annotate(
        requests=Sum("requests"), admitted=Sum("admitted"), errors=Sum("errors")).order_by())
    empty = {"requests": 0, "admitted": 0, "errors": 0}
    endpoints: dict[str, dict[str, int]] = defaultdict(lambda: dict(empty))
    statuses: dict[int, dict[str, int]] = defaultdict(lambda: dict(empty))
    keys: dict[str, dict[str, int]] = defaultdict(lambda: dict(empty))
    rejected: dict[int, int] = defaultdict(int)
    ok = client = server = unknown = unreachable = 0
    for r in rows:
        n, adm, err = int(r["requests"] or 0), int(r["admitted"] or 0), int(r["errors"] or 0)
        status = int(r["status"] or 0)
        for cell in (endpoints[r["endpoint"]], statuses[status], keys[r["key_prefix"]]):
            cell["requests"] += n
            cell["admitted"] += adm
            cell["errors"] += err
        if status == 0:
            unknown += adm
        elif status < 400:
            ok += adm
        elif status < 500:
            client += adm
        else:
            server += adm
        if n > adm:
            if status in UPSTREAM_FAILURE_STATUSES:
                unreachable += n - adm
            else:
                rejected[status] += n - adm
    ranked = sorted(endpoints.items(), key=lambda kv: (-kv[1]["requests"], kv[0]))
    by_endpoint = [{"endpoint": e or "(unknown)", **v} for e, v in ranked[:MAX_ENDPOINT_ROWS]]
    if len(ranked) > MAX_ENDPOINT_ROWS:
        rest = dict(empty)
        for _, v in ranked[MAX_ENDPOINT_ROWS:]:
            for f in rest:
                rest[f] += v[f]
        by_endpoint.append({"endpoint": f"(other {len(ranked) - MAX_ENDPOINT_ROWS} endpoints)", **rest})
    by_status = [{"status": s or "unknown", **v} for s, v in sorted(statuses.items())]
    by_key = [{"key_prefix": k or "(no key)", **v}
              for k, v in sorted(keys.items(), key=lambda kv: (-kv[1]["requests"], kv[0]))]
    reasons = [{"status": s or "unknown", "reason": REJECTION_REASONS.get(s, "Other gateway refusal"), "requests": n}
               for s, n in sorted(rejected.items())]
    total = sum(v["requests"] for v in statuses.values())
    admitted = sum(v["admitted"] for v in statuses.values())
    rec = UsageReconciliation(
        requests=total, admitted=admitted, admitted_ok=ok, admitted_client_errors=client,
        admitted_upstream_errors=server, admitted_unknown=unknown, rejected=sum(rejected.values()),
        rejected_by_reason=reasons, upstream_unreachable=unreachable,
        errors=sum(v["errors"] for v in statuses.values()),
    )
    return UsageBreakdown(reconciliation=rec, by_endpoint=by_endpoint, by_status=by_status, by_key=by_key)
