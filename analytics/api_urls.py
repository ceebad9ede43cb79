"""The usage API under /api/v1/, included by portal/api_urls.py (by name, as a string)."""

from django.urls import path

from analytics.reports.apis import UsageListApi, UsageSummaryApi

urlpatterns = [
    path("usage/", UsageListApi.as_view(), name="usage-list"),
    path("usage/summary/", UsageSummaryApi.as_view(), name="usage-summary"),
]
