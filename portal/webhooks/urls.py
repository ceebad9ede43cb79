from django.urls import path

from portal.webhooks import views

urlpatterns = [
    path("webhooks/", views.endpoint_list, name="webhook-list"),
    path("webhooks/new/", views.endpoint_create, name="webhook-create"),
    path("webhooks/<int:endpoint_id>/", views.endpoint_detail, name="webhook-detail"),
    path("webhooks/<int:endpoint_id>/edit/", views.endpoint_edit, name="webhook-edit"),
    path("webhooks/<int:endpoint_id>/enabled/", views.endpoint_set_enabled, name="webhook-set-enabled"),
    path("webhooks/<int:endpoint_id>/delete/", views.endpoint_delete, name="webhook-delete"),
    path("webhooks/<int:endpoint_id>/test/", views.endpoint_test, name="webhook-test"),
    path("webhooks/<int:endpoint_id>/rotate/", views.endpoint_rotate, name="webhook-rotate"),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/retry/",
        views.delivery_retry,
        name="webhook-delivery-retry",
    ),
]
