"""Reports pages: the operator dashboard, developers' usage (with quota alerts) and
reconciliation. Small views that read selectors, call services and render.

Every page answers ?format=csv and ?format=json with the rows of its table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from analytics.exports import export
from analytics.models import TrafficRollup
from analytics.monitoring import selectors as monitoring
from analytics.quotas import selectors as quota_selectors
from analytics.quotas import services as quota_services
from analytics.reports import selectors
from analytics.web import bad_parameters, chart, finance_required, month_form, operator_required, render_page
from portal.catalog.selectors import api_names
from portal.core.errors import ApplicationError
from portal.core.web import AuthenticatedHttpRequest
from portal.declarative.selectors import config_drift
from portal.keys.selectors import api_key_prefixes, applications_for
from portal.plans.selectors import approvals_pending_count, plans_with_api

# Rollup or TrafficRollup: the dashboard filters either.
_R = TypeVar("_R", bound=Model)

GRANULARITY_NAMES = {"m": "minute", "h": "hour", "d": "day"}


def _bucket_label(moment: datetime, granularity: str) -> str:
    return moment.strftime("%Y-%m-%d" if granularity == "d" else "%m-%d %H:%M")


# --- filters -------------------------------------------------------------------------------


class RangeForm(forms.Form):
    range = forms.ChoiceField(
        choices=[("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"),
                 ("custom", "Custom")],
        required=False, initial="24h",
    )
    start = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-11-01 00:00")
    end = forms.DateTimeField(required=False)

    def time_range(self) -> selectors.TimeRange:
        data = self.cleaned_data if self.is_valid() else {}
        start, end = data.get("start"), data.get("end")
        if data.get("range") == "custom" and start:
            return selectors.time_range("custom", start=start, end=end)
        return selectors.time_range(data.get("range") or "24h")


class DashboardFilterForm(RangeForm):
    api = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="API")
    version = forms.CharField(required=False, max_length=40)
    application = forms.IntegerField(required=False, min_value=1)
    plan = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # self.fields is typed dict[str, Field]; these two are the ChoiceFields declared above.
        cast(forms.ChoiceField, self.fields["api"]).choices = [("", "All APIs"), *api_names().items()]
        cast(forms.ChoiceField, self.fields["plan"]).choices = [("", "All plans")] + [
            (p.pk, f"{p.api.name} · {p.name}") for p in plans_with_api()
        ]

    def apply(self, qs: QuerySet[_R]) -> QuerySet[_R]:
        if not self.is_valid():
            return qs
        data = self.cleaned_data
        if data.get("api"):
            qs = qs.filter(api_id=data["api"])
        if data.get("version"):
            qs = qs.filter(version=data["version"])
        if data.get("application"):
            qs = qs.filter(application_id=data["application"])
        if data.get("plan"):
            qs = qs.filter(plan_id=data["plan"])
        return qs


# --- operator dashboard --------------------------------------------------------------------


@login_required
@operator_required
def operator_dashboard(request: HttpRequest) -> HttpResponse:
    form = DashboardFilterForm({"range": "24h", **request.GET.dict()})
    tr = form.time_range()
    rollups = selectors.rollups_for(request.user)
    by_application = form.is_valid() and bool(form.cleaned_data.get("application"))
    # Without an application filter the series come from the much smaller TrafficRollup.
    series_source = rollups if by_application else TrafficRollup.objects.all()
    qs = form.apply(selectors.in_range(series_source, tr)).order_by()
    tops_range = selectors.top_lists_range(tr)
    tops_qs = form.apply(selectors.in_range(rollups, tops_range)).order_by()
    figures = selectors.dashboard(qs, tops_qs)
    points = figures.series
    rows = [
        {"bucket": p["bucket"], "requests": p["requests"], "errors": p["errors"], "p50_ms": p["p50_ms"],
         "p95_ms": p["p95_ms"], "p99_ms": p["p99_ms"]}
        for p in points
    ]
    exported = export(request, rows=rows, columns=["bucket", "requests", "errors", "p50_ms", "p95_ms", "p99_ms"],
                      filename=f"traffic-{tr.label}")
    if exported:
        return exported
    labels = [_bucket_label(p["bucket"], tr.granularity) for p in points]
    statuses = figures.statuses
    titles = {"api": "APIs", "version": "versions", "application": "applications", "organization": "organizations"}
    tops = {titles[dim]: figures.tops[dim] for dim in ("api", "version", "application", "organization")}
    charts = [
        chart("traffic-chart", "line", labels, [("Requests", [p["requests"] for p in points]),
                                                 ("Errors", [p["errors"] for p in points])], "Traffic"),
        chart("latency-chart", "line", labels, [(name, [p[key] for p in points]) for name, key in
                                                 (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))],
               "Latency (ms)"),
        chart("status-chart", "bar", [s["status"] for s in statuses],
               [("Requests", [s["requests"] for s in statuses])], "Responses by status"),
    ]
    return render_page(request, "analytics/operator_dashboard.html", {
        "form": form, "tr": tr, "tops_since": tops_range.start, "granularity": GRANULARITY_NAMES[tr.granularity],
        "totals": figures.totals,
        "rows": rows, "statuses": statuses,
        "tops": tops, "charts": charts,
        # Whether the live catalog and plans still match the last `manage.py config sync`.
        "drift": config_drift(),
        # Metering lag per partition, live, and the open operator alerts (the banner).
        "metering": monitoring.metering_status(),
        # The admin's approvals inbox: pending subscriptions and plan changes alike.
        "approvals_waiting": approvals_pending_count(),
        "upstream_health": monitoring.upstream_health(),
    })


# --- developer usage -----------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def developer_usage(request: AuthenticatedHttpRequest) -> HttpResponse:
    apps = list(applications_for(request.user).order_by("name"))
    requested = request.GET.get("application")
    if not apps and not requested:
        return render_page(request, "analytics/developer_usage.html", {"apps": []})
    app_id = requested or str(apps[0].pk)
    app = next((a for a in apps if str(a.pk) == app_id), None)
    if app is None:
        raise Http404("No such application")  # another organization's: same answer as a missing one

    alert = quota_selectors.quota_alert_of(application_id=app.pk)
    alert_form = quota_selectors.quota_alert_form(alert=alert, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and alert_form.is_valid():
        try:
            quota_services.quota_alert_set(
                application=app, user=request.user, percentages=alert_form.cleaned_data["percentages"]
            )
        except ApplicationError as exc:
            alert_form.add_error("percentages", exc.message)
        else:
            messages.success(request, "Quota alerts saved.")
            return redirect(f"{request.path}?application={app.pk}")

    range_form = RangeForm({"range": "24h", **request.GET.dict()})
    tr = range_form.time_range()
    qs = selectors.in_range(selectors.rollups_for(request.user).filter(application_id=app.pk), tr).order_by()
    keys = api_key_prefixes(application_id=app.pk)
    key = request.GET.get("key") or ""
    if key:
        if key not in keys:
            raise Http404("No such key")
        qs = qs.filter(key_prefix=key)
    # The reconciliation and breakdowns read hour or day rows (minute rows carry no
    # endpoint or status), from the whole hour or day that holds the range's start.
    breakdown_range = selectors.top_lists_range(tr)
    breakdown_qs = selectors.in_range(
        selectors.rollups_for(request.user).filter(application_id=app.pk), breakdown_range
    ).order_by()
    if key:
        breakdown_qs = breakdown_qs.filter(key_prefix=key)
    breakdown = selectors.usage_breakdown(breakdown_qs)
    points = selectors.series(qs)
    rows = [{"bucket": p["bucket"], "requests": p["requests"], "errors": p["errors"],
             "p95_ms": p["p95_ms"]} for p in points]
    exported = export(request, rows=rows, columns=["bucket", "requests", "errors", "p95_ms"],
                      filename=f"usage-{app.pk}-{tr.label}")
    if exported:
        return exported
    labels = [_bucket_label(p["bucket"], tr.granularity) for p in points]
    quotas = quota_selectors.quota_usage(application_id=app.pk)
    charts = [
        chart("usage-chart", "line", labels, [("Requests", [p["requests"] for p in points]),
                                               ("Errors", [p["errors"] for p in points])], "Requests"),
        chart("usage-latency-chart", "line", labels, [("p95 ms", [p["p95_ms"] for p in points])], "Latency p95"),
    ]
    return render_page(request, "analytics/developer_usage.html", {
        "apps": apps, "app": app, "keys": keys, "key": key, "tr": tr, "range_form": range_form,
        "totals": selectors.totals(qs), "rows": rows, "quotas": quotas, "charts": charts,
        "alert_form": alert_form, "alert": alert,
        "breakdown": breakdown, "rec": breakdown.reconciliation,
        "breakdown_tables": [
            {"id": table_id, "title": title, "column": column,
             "rows": [{"label": str(r[field]), **r} for r in items]}
            for table_id, title, column, field, items in (
                ("by-endpoint", "By endpoint", "Endpoint", "endpoint", breakdown.by_endpoint),
                ("by-status", "By status code", "Status", "status", breakdown.by_status),
                ("by-key", "By key", "Key prefix", "key_prefix", breakdown.by_key),
            )
        ], "breakdown_since": breakdown_range.start,
        "breakdown_granularity": GRANULARITY_NAMES[breakdown_range.granularity],
    })


# --- reconciliation ----------------------------------------------------------------------


@login_required
@finance_required
def reconciliation(request: HttpRequest) -> HttpResponse:
    form = month_form(request)
    if not form.is_valid():
        return bad_parameters(request, form, "analytics/reconciliation.html", {"rows": [], "mismatches": 0})
    month = form.cleaned_data["month"]
    rows = selectors.reconciliation_rows(month=month)
    exported = export(request, rows=rows, columns=["day", "subscription_id", "gateway", "rollups", "invoice",
                                                   "mismatch"], filename=f"reconciliation-{month:%Y-%m}")
    if exported:
        return exported
    return render_page(request, "analytics/reconciliation.html", {
        "month": month, "month_form": form, "rows": rows, "mismatches": sum(r["mismatch"] for r in rows),
    })
