"""Server-rendered portal pages. One include per area; add yours on its own line."""

from django.urls import include, path

urlpatterns = [
    path("", include("portal.accounts.urls")),
    path("", include("portal.keys.urls")),
    path("", include("portal.plans.urls")),
    path("", include("portal.catalog.urls")),
    path("", include("portal.webhooks.urls")),
    path("", include("analytics.urls")),
]
