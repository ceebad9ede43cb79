"""Webhook reads, scoped to what the caller may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from portal.accounts.models import User


def endpoints_for(user: User | AnonymousUser) -> QuerySet[WebhookEndpoint]:
    """Operators see every endpoint (the platform's included); developers their organizations' ones."""
    if not user.is_authenticated:
        return WebhookEndpoint.objects.none()
    qs = WebhookEndpoint.objects.select_related("organization")
    if user.is_staff:
        return qs
    return qs.filter(organization__memberships__user=user).distinct()


def endpoints_of_member(user: User | AnonymousUser) -> QuerySet[WebhookEndpoint]:
    """The endpoints of the organizations the user belongs to: the portal's webhooks page."""
    if not user.is_authenticated:
        return WebhookEndpoint.objects.none()
    return (
        WebhookEndpoint.objects.select_related("organization")
        .filter(organization__memberships__user=user)
        .distinct()
        .order_by("organization__name", "url")
    )


def deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """An endpoint's delivery log, newest first."""
    return endpoint.deliveries.select_related("event").order_by("-created_at", "-id")


def deliveries_for(user: User | AnonymousUser) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint__in=endpoints_for(user)).select_related("event", "endpoint")


def delivery_ids_due(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose time has come (and attempts whose worker died: the lease ran out)."""
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
