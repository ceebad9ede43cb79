from django.urls import path

from portal.keys import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("applications/new/", views.application_create, name="application-create"),
    path("applications/<int:application_id>/", views.application_detail, name="application-detail"),
    path("applications/<int:application_id>/edit/", views.application_edit, name="application-edit"),
    path("applications/<int:application_id>/delete/", views.application_delete, name="application-delete"),
    path("applications/<int:application_id>/keys/new/", views.key_issue, name="key-issue"),
    path("applications/<int:application_id>/keys/<int:key_id>/rotate/", views.key_rotate, name="key-rotate"),
    path("applications/<int:application_id>/keys/<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
    path("applications/<int:application_id>/oauth/new/", views.oauth_client_create, name="oauth-client-create"),
    path("applications/<int:application_id>/oauth/delete/", views.oauth_client_delete, name="oauth-client-delete"),
]
