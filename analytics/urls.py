"""Analytics pages, included by portal/web_urls.py (by name, as a string)."""

from django.urls import path

from analytics.billing import views as billing
from analytics.deprecation import views as deprecation
from analytics.monitoring import views as monitoring
from analytics.reports import views as reports

app_name = "analytics"

urlpatterns = [
    path("analytics/", reports.operator_dashboard, name="operator-dashboard"),
    path("analytics/usage/", reports.developer_usage, name="usage"),
    path("analytics/deprecations/", deprecation.deprecation_report, name="deprecations"),
    path("analytics/deprecations/notify/", deprecation.deprecation_notify, name="deprecation-notify"),
    path("analytics/billing/", billing.billing_report, name="billing-report"),
    path("analytics/reconciliation/", reports.reconciliation, name="reconciliation"),
    path("analytics/metrics", monitoring.metrics, name="metrics"),
    path("invoices/", billing.invoice_list, name="invoices"),
    path("invoices/<int:invoice_id>/", billing.invoice_detail, name="invoice"),
    path("invoices/<int:invoice_id>/pdf/", billing.invoice_pdf, name="invoice-pdf"),
    path("invoices/<int:invoice_id>/paid/", billing.invoice_pay, name="invoice-pay"),
    path("invoices/<int:invoice_id>/void/", billing.invoice_void, name="invoice-void"),
    path("invoices/<int:invoice_id>/credit-notes/", billing.credit_note_create, name="credit-note-create"),
]
