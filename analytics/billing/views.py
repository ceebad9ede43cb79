"""Billing pages: revenue (finance), invoices (members see their organizations'),
and finance's invoice lifecycle: mark paid, void, correct by credit note, PDF.

Every page answers ?format=csv and ?format=json with the rows of its table. Every
amount, in HTML, CSV, JSON and PDF alike, is rounded to the currency's minor unit by
``rules.money`` (ROUND_HALF_UP, docs/analytics.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST

from analytics.billing import rules, selectors, services
from analytics.exports import export, json_response
from analytics.models import ISSUED_STATES, Invoice, InvoiceLine, InvoiceStatus
from analytics.web import bad_parameters, chart, finance_required, month_form, render_page
from portal.accounts.selectors import is_finance, organization_ids_for
from portal.core.errors import ApplicationError
from portal.core.web import AuthenticatedHttpRequest
from portal.plans.selectors import subscriber_organization_ids, unbilled_plan_ids

LINE_COLUMNS = ["description", "kind", "billed", "period_start", "period_end", "fraction", "base_fee",
                "included_requests", "used_requests", "overage_requests", "overage_fee", "amount"]
MONEY_COLUMNS = ("base_fee", "overage_fee", "amount")


@login_required
@finance_required
def billing_report(request: HttpRequest) -> HttpResponse:
    form = month_form(request)
    if not form.is_valid():
        return bad_parameters(request, form, "analytics/billing_report.html", {"report": {}, "charts": []})
    month = form.cleaned_data["month"]
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
    return render_page(request, "analytics/billing_report.html", {
        "month": month, "month_form": form, "report": report, "charts": charts,
    })


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    # The current month's draft is recomputed on sight, so it is always live.
    current = rules.month_start(timezone.now())
    for org_id in organization_ids_for(request.user):
        services.invoice_refresh(organization_id=org_id, month=current)
    invoices = selectors.invoices_for(request.user)  # finance and operators: everyone's
    rows = [{"number": i.number or "(draft)", "organization": i.organization.name, "month": i.month,
             "currency": i.currency, "status": i.status, "total": rules.money(i.total, i.currency), "id": i.pk}
            for i in invoices]
    exported = export(request, rows=rows, columns=["number", "organization", "month", "currency", "status", "total"],
                      filename="invoices")
    if exported:
        return exported
    return render_page(request, "analytics/invoice_list.html", {"invoices": invoices})


def _line_row(line: InvoiceLine, currency: str, unbilled: set[int]) -> dict[str, Any]:
    """One line as the page, the exports and the PDF show it. A free plan's line is
    "not billed": no included or overage requests, whatever it used."""
    row: dict[str, Any] = {c: getattr(line, c) for c in LINE_COLUMNS if c != "billed"}
    row["billed"] = line.plan_id not in unbilled or line.amount != 0
    for name in MONEY_COLUMNS:
        row[name] = rules.money(row[name], currency)
    if not row["billed"]:
        row["included_requests"] = row["overage_requests"] = None
    return row


def _invoice_context(invoice: Invoice) -> dict[str, Any]:
    lines = list(invoice.lines.all())
    unbilled = unbilled_plan_ids(sorted({ln.plan_id for ln in lines}))
    notes = list(selectors.credit_notes_of(invoice))
    credited = rules.money(services.credit_total(invoice), invoice.currency)
    return {
        "invoice": invoice,
        "rows": [_line_row(ln, invoice.currency, unbilled) for ln in lines],
        "total": rules.money(invoice.total, invoice.currency),
        "credit_notes": [{"number": n.number, "issued_at": n.issued_at, "reason": n.reason,
                          "amount": rules.money(n.amount, n.currency)} for n in notes],
        "balance": rules.money(invoice.total - credited, invoice.currency),
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "is_issued": invoice.status in ISSUED_STATES,
    }


class CreditNoteForm(forms.Form):
    prefix = "credit"  # two forms on one page: their fields need distinct ids
    amount = forms.DecimalField(min_value=Decimal("0.001"), max_digits=14, decimal_places=3,
                                label="Amount to credit")
    reason = forms.CharField(max_length=200, label="Reason for the credit note")


class VoidForm(forms.Form):
    prefix = "void"
    reason = forms.CharField(max_length=200, label="Reason for voiding")


@login_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = get_object_or_404(selectors.invoices_for(request.user), pk=invoice_id)
    context = _invoice_context(invoice)
    filename = f"invoice-{invoice.month:%Y-%m}-{invoice.pk}"
    if request.GET.get("format") == "json":
        return json_response({
            "number": invoice.number, "organization": invoice.organization.name, "month": invoice.month,
            "currency": invoice.currency, "status": invoice.status, "total": context["total"],
            "credit_notes": context["credit_notes"], "balance": context["balance"], "lines": context["rows"],
        }, filename)
    exported = export(request, rows=context["rows"], columns=LINE_COLUMNS, filename=filename)
    if exported:
        return exported
    return _detail_page(request, context)


def _detail_page(request: HttpRequest, context: dict[str, Any], status: int = 200,
                 credit_form: CreditNoteForm | None = None, void_form: VoidForm | None = None) -> HttpResponse:
    invoice: Invoice = context["invoice"]
    finance = is_finance(request.user)
    response = render_page(request, "analytics/invoice_detail.html", {
        **context,
        "can_pay": finance and invoice.status == InvoiceStatus.FINAL,
        "can_void": finance and invoice.status == InvoiceStatus.FINAL,
        "can_credit": finance and invoice.status in (InvoiceStatus.FINAL, InvoiceStatus.PAID),
        "credit_form": credit_form or CreditNoteForm(),
        "void_form": void_form or VoidForm(),
    })
    response.status_code = status
    return response


def _finance_invoice(request: HttpRequest, invoice_id: int) -> Invoice:
    return get_object_or_404(selectors.invoices_for(request.user), pk=invoice_id)


@login_required
@finance_required
@require_POST
def invoice_pay(request: AuthenticatedHttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _finance_invoice(request, invoice_id)
    try:
        services.invoice_mark_paid(invoice=invoice, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invoice {invoice.number} marked paid.")
    return redirect("analytics:invoice", invoice.pk)


@login_required
@finance_required
@require_POST
def invoice_void(request: AuthenticatedHttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _finance_invoice(request, invoice_id)
    form = VoidForm(request.POST)
    if form.is_valid():
        try:
            note = services.invoice_void(invoice=invoice, actor=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            issued = f" Credit note {note.number} issued." if note else ""
            messages.success(request, f"Invoice {invoice.number} voided.{issued}")
            return redirect("analytics:invoice", invoice.pk)
    invoice.refresh_from_db()
    return _detail_page(request, _invoice_context(invoice), status=400, void_form=form)


@login_required
@finance_required
@require_POST
def credit_note_create(request: AuthenticatedHttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _finance_invoice(request, invoice_id)
    form = CreditNoteForm(request.POST)
    if form.is_valid():
        try:
            note = services.credit_note_issue(invoice=invoice, actor=request.user, amount=form.cleaned_data["amount"],
                                              reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Credit note {note.number} issued.")
            return redirect("analytics:invoice", invoice.pk)
    invoice.refresh_from_db()
    return _detail_page(request, _invoice_context(invoice), status=400, credit_form=form)


def _add_errors(form: forms.Form, exc: ApplicationError) -> None:
    if not exc.fields:
        form.add_error(None, exc.message)
    for name, errors in exc.fields.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """The issued invoice as PDF: the same figures from the same template part as
    the page, laid out by WeasyPrint with Debian's DejaVu fonts. Drafts have none:
    their figures still change."""
    invoice = get_object_or_404(selectors.invoices_for(request.user), pk=invoice_id)
    if invoice.status not in ISSUED_STATES:
        raise Http404("Drafts have no PDF")
    from weasyprint import HTML  # imported here: it loads Pango, which only this page needs

    html = render_to_string("analytics/invoice_pdf.html", _invoice_context(invoice), request=request)
    pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
    return response
