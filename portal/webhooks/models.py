"""Webhook endpoints, the event outbox and the delivery log.

An event row and its deliveries are written in the transaction of the change that
caused them (the transactional outbox): a committed change always has its
deliveries, a rolled-back one never does. Workers then move each delivery along.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WebhookEndpoint(models.Model):
    """A URL that receives events. ``organization`` None: an operators' platform-wide endpoint.

    The signing secret is stored encrypted (portal/webhooks/crypto.py): HMAC signing needs
    the secret itself, so it cannot be a one-way hash as API keys are; no page, admin or
    API response ever decrypts it for display."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2000, help_text="Checked by portal/webhooks/outbound.py: https, public address.")
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="The event types this endpoint receives.")
    is_enabled = models.BooleanField(default=True)
    secret_encrypted = models.TextField(editable=False)
    secret_prefix = models.CharField(max_length=16, editable=False, help_text="Enough to tell secrets apart.")
    # During a rotation's overlap the previous secret signs too (a second v1 signature).
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Set at the first failed attempt after a success; cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One occurrence of an event type. ``message_id`` is the Standard Webhooks ``webhook-id``:
    the same for every endpoint and every retry, so receivers can deduplicate."""

    message_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=60, db_index=True)
    # The organization it concerns, if any (None: platform-wide, e.g. metering lag).
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """An event on its way to one endpoint, with its last attempt's outcome (the delivery log)."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # A manual retry grants one more attempt than were made so far.
    max_attempts = models.PositiveIntegerField()
    # When a pending delivery is due; while an attempt runs, the end of its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_response_excerpt = models.TextField(blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint} ({self.status})"


class KeyExpiryNotice(models.Model):
    """Which key.expiring events were emitted (7 and 1 day before), so each goes out once."""

    key_id = models.BigIntegerField()
    days = models.PositiveSmallIntegerField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key_id", "days", "expires_at"], name="key_expiry_notice_once")
        ]

    def __str__(self) -> str:
        return f"key {self.key_id}: {self.days} day(s) before {self.expires_at:%Y-%m-%d}"
