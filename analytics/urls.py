from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("analytics/", views.operator_dashboard, name="operator-dashboard"),
    path("analytics/usage/", views.developer_usage, name="usage"),
    path("analytics/deprecations/", views.deprecation_report, name="deprecations"),
    path("analytics/deprecations/notify/", views.deprecation_notify, name="deprecation-notify"),
    path("analytics/billing/", views.billing_report, name="billing-report"),
    path("analytics/reconciliation/", views.reconciliation, name="reconciliation"),
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
]
