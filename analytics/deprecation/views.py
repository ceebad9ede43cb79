"""Deprecation pages (operators): the report of deprecated versions' callers, and the
button that emails them. ?format=csv and ?format=json export the report's rows.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from analytics.deprecation import selectors, services
from analytics.exports import export
from analytics.reports.selectors import RANGES
from analytics.web import chart, operator_required, render_page
from portal.core.errors import ApplicationError
from portal.core.web import AuthenticatedHttpRequest


@login_required
@operator_required
def deprecation_report(request: HttpRequest) -> HttpResponse:
    rows = selectors.deprecated_callers(since=timezone.now() - RANGES["30d"])
    columns = ["api_name", "version", "successor", "sunset_at", "organization", "application", "requests", "days"]
    exported = export(request, rows=rows, columns=columns, filename="deprecated-callers")
    if exported:
        return exported
    versions = sorted({(r["api_id"], r["version"], r["api_name"]) for r in rows})
    calls = chart("deprecation-chart", "bar", [f"{r['application']} ({r['api_name']} {r['version']})" for r in rows],
                  [("Requests, last 30 days", [r["requests"] for r in rows])], "Calls to deprecated versions")
    return render_page(request, "analytics/deprecation_report.html", {
        "rows": rows, "versions": versions, "charts": [calls] if rows else [],
        "notices": selectors.recent_notices(limit=20),
    })


@login_required
@operator_required
@require_POST
def deprecation_notify(request: AuthenticatedHttpRequest) -> HttpResponse:
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
