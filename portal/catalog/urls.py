from django.urls import path

from portal.catalog import views

urlpatterns = [
    path("", views.marketplace_home, name="marketplace"),
    path("apis/<slug:slug>/", views.api_detail, name="api-detail"),
    path("apis/<slug:slug>/<slug:label>/", views.version_docs, name="version-docs"),
    path("apis/<slug:slug>/<slug:label>/reference/", views.version_reference, name="version-reference"),
    path("apis/<slug:slug>/<slug:label>/openapi.json", views.version_openapi, name="version-openapi"),
]
