from django.urls import path

from analytics.apis import UsageListApi, UsageSummaryApi

urlpatterns = [
    path("usage/", UsageListApi.as_view(), name="usage-list"),
    path("usage/summary/", UsageSummaryApi.as_view(), name="usage-summary"),
]
