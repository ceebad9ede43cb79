"""Analytics pages: small views that read selectors, call services and render.

Every page answers ?format=csv and ?format=json with the rows of its table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from analytics import billing, selectors, services
from analytics.exports import export
from analytics.models import InvoiceStatus, QuotaAlert, TrafficRollup
from portal.core.errors import ApplicationError

View = Callable[..., HttpResponse]
GRANULARITY_NAMES = {"m": "minute", "h": "hour", "d": "day"}


def operator_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not selectors.is_operator(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def finance_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not selectors.is_finance(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {"is_finance": selectors.is_finance(request.user), **context})


def _chart(canvas: str, kind: str, labels: list[str], datasets: list[tuple[str, list[Any]]],
           title: str) -> dict[str, Any]:
    return {
        "canvas": canvas, "type": kind, "title": title, "labels": labels,
        "datasets": [{"label": name, "data": data} for name, data in datasets],
    }


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
        from portal.catalog.models import Api
        from portal.plans.models import Plan

        super().__init__(*args, **kwargs)
        self.fields["api"].choices = [("", "All APIs"), *Api.objects.values_list("pk", "name")]
        self.fields["plan"].choices = [("", "All plans")] + [
            (p.pk, f"{p.api.name} · {p.name}") for p in Plan.objects.select_related("api")
        ]

    def apply(self, qs: Any) -> Any:
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
        _chart("traffic-chart", "line", labels, [("Requests", [p["requests"] for p in points]),
                                                 ("Errors", [p["errors"] for p in points])], "Traffic"),
        _chart("latency-chart", "line", labels, [(name, [p[key] for p in points]) for name, key in
                                                 (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))],
               "Latency (ms)"),
        _chart("status-chart", "bar", [s["status"] for s in statuses],
               [("Requests", [s["requests"] for s in statuses])], "Responses by status"),
    ]
    return _render(request, "analytics/operator_dashboard.html", {
        "form": form, "tr": tr, "tops_since": tops_range.start, "granularity": GRANULARITY_NAMES[tr.granularity],
        "totals": figures.totals,
        "rows": rows, "statuses": statuses,
        "tops": tops, "charts": charts,
    })


# --- developer usage -----------------------------------------------------------------------


class QuotaAlertForm(forms.Form):
    percentages = forms.CharField(
        max_length=60, help_text="Comma-separated, e.g. 80, 100", label="Email me at these quota percentages"
    )

    def clean_percentages(self) -> list[int]:
        try:
            values = [int(p) for p in self.cleaned_data["percentages"].replace(" ", "").split(",") if p]
        except ValueError as exc:
            raise forms.ValidationError("Use whole numbers separated by commas.") from exc
        if not values:
            raise forms.ValidationError("Give at least one percentage.")
        return values


@login_required
@require_http_methods(["GET", "POST"])
def developer_usage(request: HttpRequest) -> HttpResponse:
    from portal.keys.selectors import applications_for

    apps = list(applications_for(request.user).order_by("name"))
    requested = request.GET.get("application")
    if not apps and not requested:
        return _render(request, "analytics/developer_usage.html", {"apps": []})
    app_id = requested or str(apps[0].pk)
    app = next((a for a in apps if str(a.pk) == app_id), None)
    if app is None:
        raise Http404("No such application")  # another organization's: same answer as a missing one

    alert = QuotaAlert.objects.filter(application=app).first()
    if request.method == "POST":
        alert_form = QuotaAlertForm(request.POST)
        if alert_form.is_valid():
            try:
                services.quota_alert_set(
                    application=app, user=request.user, percentages=alert_form.cleaned_data["percentages"]
                )
            except ApplicationError as exc:
                alert_form.add_error("percentages", exc.message)
            else:
                messages.success(request, "Quota alerts saved.")
                return redirect(f"{request.path}?application={app.pk}")
    else:
        initial = ", ".join(str(p) for p in alert.percentages) if alert else "80, 100"
        alert_form = QuotaAlertForm(initial={"percentages": initial})

    range_form = RangeForm({"range": "24h", **request.GET.dict()})
    tr = range_form.time_range()
    qs = selectors.in_range(selectors.rollups_for(request.user).filter(application_id=app.pk), tr).order_by()
    keys = sorted(set(app.keys.values_list("prefix", flat=True)))
    key = request.GET.get("key") or ""
    if key:
        if key not in keys:
            raise Http404("No such key")
        qs = qs.filter(key_prefix=key)
    points = selectors.series(qs)
    rows = [{"bucket": p["bucket"], "requests": p["requests"], "errors": p["errors"],
             "p95_ms": p["p95_ms"]} for p in points]
    exported = export(request, rows=rows, columns=["bucket", "requests", "errors", "p95_ms"],
                      filename=f"usage-{app.pk}-{tr.label}")
    if exported:
        return exported
    labels = [_bucket_label(p["bucket"], tr.granularity) for p in points]
    quotas = selectors.quota_usage(application_id=app.pk)
    charts = [
        _chart("usage-chart", "line", labels, [("Requests", [p["requests"] for p in points]),
                                               ("Errors", [p["errors"] for p in points])], "Requests"),
        _chart("usage-latency-chart", "line", labels, [("p95 ms", [p["p95_ms"] for p in points])], "Latency p95"),
    ]
    return _render(request, "analytics/developer_usage.html", {
        "apps": apps, "app": app, "keys": keys, "key": key, "tr": tr, "range_form": range_form,
        "totals": selectors.totals(qs), "rows": rows, "quotas": quotas, "charts": charts,
        "alert_form": alert_form, "alert": alert,
    })


# --- deprecation report --------------------------------------------------------------------


@login_required
@operator_required
def deprecation_report(request: HttpRequest) -> HttpResponse:
    rows = selectors.deprecated_callers(since=timezone.now() - selectors.RANGES["30d"])
    columns = ["api_name", "version", "successor", "sunset_at", "organization", "application", "requests", "days"]
    exported = export(request, rows=rows, columns=columns, filename="deprecated-callers")
    if exported:
        return exported
    from analytics.models import DeprecationNotice

    versions = sorted({(r["api_id"], r["version"], r["api_name"]) for r in rows})
    chart = _chart("deprecation-chart", "bar", [f"{r['application']} ({r['api_name']} {r['version']})" for r in rows],
                   [("Requests, last 30 days", [r["requests"] for r in rows])], "Calls to deprecated versions")
    return _render(request, "analytics/deprecation_report.html", {
        "rows": rows, "versions": versions, "charts": [chart] if rows else [],
        "notices": DeprecationNotice.objects.order_by("-sent_at")[:20],
    })


@login_required
@operator_required
@require_POST
def deprecation_notify(request: HttpRequest) -> HttpResponse:
    try:
        api_id = int(request.POST.get("api_id", ""))
    except ValueError as exc:
        raise Http404 from exc
    version = request.POST.get("version", "")
    try:
        notices = services.deprecation_notify(api_id=api_id, version=version, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Emailed the owners of {len(notices)} application(s).")
    return redirect("analytics:deprecations")


# --- billing -------------------------------------------------------------------------------


def _month_param(request: HttpRequest) -> date:
    raw = request.GET.get("month", "")
    try:
        return datetime.strptime(raw, "%Y-%m").replace(tzinfo=UTC).date() if raw else billing.month_start(
            timezone.now()
        )
    except ValueError as exc:
        raise Http404("Bad month") from exc


@login_required
@finance_required
def billing_report(request: HttpRequest) -> HttpResponse:
    month = _month_param(request)
    # Drafts were only recomputed when a member opened their invoices, so finance saw
    # an open month's report empty or stale. Recompute them on sight here too (a
    # closed month's invoices are final and invoice_refresh leaves them alone).
    current = billing.month_start(timezone.now())
    if month == current or billing.next_month(month) == current:
        from portal.plans.models import Subscription

        org_ids = Subscription.objects.values_list("application__organization_id", flat=True).distinct()
        for org_id in sorted(set(org_ids)):
            services.invoice_refresh(organization_id=org_id, month=month)
    report = selectors.revenue_report(month=month)
    by = request.GET.get("by", "organization")
    if by not in report:
        by = "organization"
    exported = export(request, rows=report[by], columns=["label", "currency", "amount", "requests"],
                      filename=f"revenue-by-{by}-{month:%Y-%m}")
    if exported:
        return exported
    charts = [
        _chart(f"revenue-{key}-chart", "bar", [f"{r['label']} ({r['currency']})" for r in rows],
               [("Revenue", [float(r["amount"]) for r in rows])], f"Revenue by {key}")
        for key, rows in report.items() if rows
    ]
    return _render(request, "analytics/billing_report.html", {"month": month, "report": report, "charts": charts})


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    from portal.accounts.selectors import organization_ids_for

    # The current month's draft is recomputed on sight, so it is always live.
    current = billing.month_start(timezone.now())
    for org_id in organization_ids_for(request.user):
        services.invoice_refresh(organization_id=org_id, month=current)
    invoices = selectors.invoices_for(request.user)  # finance and operators: everyone's
    rows = [{"number": i.number or "(draft)", "organization": i.organization.name, "month": i.month,
             "currency": i.currency, "status": i.status, "total": i.total, "id": i.pk} for i in invoices]
    exported = export(request, rows=rows, columns=["number", "organization", "month", "currency", "status", "total"],
                      filename="invoices")
    if exported:
        return exported
    return _render(request, "analytics/invoice_list.html", {"invoices": invoices})


@login_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = get_object_or_404(selectors.invoices_for(request.user), pk=invoice_id)
    lines = list(invoice.lines.all())
    columns = ["description", "kind", "period_start", "period_end", "fraction", "base_fee", "included_requests",
               "used_requests", "overage_requests", "overage_fee", "amount"]
    rows = [{c: getattr(ln, c) for c in columns} for ln in lines]
    fmt = request.GET.get("format")
    if fmt == "json":
        from analytics.exports import json_response

        return json_response({
            "number": invoice.number, "organization": invoice.organization.name, "month": invoice.month,
            "currency": invoice.currency, "status": invoice.status, "total": invoice.total, "lines": rows,
        }, f"invoice-{invoice.month:%Y-%m}-{invoice.pk}")
    exported = export(request, rows=rows, columns=columns, filename=f"invoice-{invoice.month:%Y-%m}-{invoice.pk}")
    if exported:
        return exported
    return _render(request, "analytics/invoice_detail.html", {
        "invoice": invoice, "lines": lines, "is_draft": invoice.status == InvoiceStatus.DRAFT,
    })


@login_required
@finance_required
def reconciliation(request: HttpRequest) -> HttpResponse:
    month = _month_param(request)
    rows = selectors.reconciliation_rows(month=month)
    exported = export(request, rows=rows, columns=["day", "subscription_id", "gateway", "rollups", "invoice",
                                                   "mismatch"], filename=f"reconciliation-{month:%Y-%m}")
    if exported:
        return exported
    return _render(request, "analytics/reconciliation.html", {
        "month": month, "rows": rows, "mismatches": sum(r["mismatch"] for r in rows),
    })
