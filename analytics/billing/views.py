"""Billing pages: revenue (finance), invoices (members see their organizations').

Every page answers ?format=csv and ?format=json with the rows of its table.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from analytics.billing import rules, selectors, services
from analytics.exports import export, json_response
from analytics.models import InvoiceStatus
from analytics.web import chart, finance_required, month_param, render_page
from portal.accounts.selectors import organization_ids_for
from portal.plans.selectors import subscriber_organization_ids


@login_required
@finance_required
def billing_report(request: HttpRequest) -> HttpResponse:
    month = month_param(request)
    # Drafts were only recomputed when a member opened their invoices, so finance saw
    # an open month's report empty or stale. Recompute them on sight here too (a
    # closed month's invoices are final and invoice_refresh leaves them alone).
    current = rules.month_start(timezone.now())
    if month == current or rules.next_month(month) == current:
        for org_id in subscriber_organization_ids():
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
        chart(f"revenue-{key}-chart", "bar", [f"{r['label']} ({r['currency']})" for r in rows],
              [("Revenue", [float(r["amount"]) for r in rows])], f"Revenue by {key}")
        for key, rows in report.items() if rows
    ]
    return render_page(request, "analytics/billing_report.html", {"month": month, "report": report, "charts": charts})


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    # The current month's draft is recomputed on sight, so it is always live.
    current = rules.month_start(timezone.now())
    for org_id in organization_ids_for(request.user):
        services.invoice_refresh(organization_id=org_id, month=current)
    invoices = selectors.invoices_for(request.user)  # finance and operators: everyone's
    rows = [{"number": i.number or "(draft)", "organization": i.organization.name, "month": i.month,
             "currency": i.currency, "status": i.status, "total": i.total, "id": i.pk} for i in invoices]
    exported = export(request, rows=rows, columns=["number", "organization", "month", "currency", "status", "total"],
                      filename="invoices")
    if exported:
        return exported
    return render_page(request, "analytics/invoice_list.html", {"invoices": invoices})


@login_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = get_object_or_404(selectors.invoices_for(request.user), pk=invoice_id)
    lines = list(invoice.lines.all())
    columns = ["description", "kind", "period_start", "period_end", "fraction", "base_fee", "included_requests",
               "used_requests", "overage_requests", "overage_fee", "amount"]
    rows = [{c: getattr(ln, c) for c in columns} for ln in lines]
    fmt = request.GET.get("format")
    if fmt == "json":
        return json_response({
            "number": invoice.number, "organization": invoice.organization.name, "month": invoice.month,
            "currency": invoice.currency, "status": invoice.status, "total": invoice.total, "lines": rows,
        }, f"invoice-{invoice.month:%Y-%m}-{invoice.pk}")
    exported = export(request, rows=rows, columns=columns, filename=f"invoice-{invoice.month:%Y-%m}-{invoice.pk}")
    if exported:
        return exported
    return render_page(request, "analytics/invoice_detail.html", {
        "invoice": invoice, "lines": lines, "is_draft": invoice.status == InvoiceStatus.DRAFT,
    })
