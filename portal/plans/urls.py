from django.urls import path

from portal.plans import views

urlpatterns = [
    path("subscriptions/new/", views.subscription_create, name="subscription-create"),
    path("subscriptions/<int:subscription_id>/change/", views.subscription_change, name="subscription-change"),
    path("subscriptions/<int:subscription_id>/cancel/", views.subscription_cancel, name="subscription-cancel"),
]
