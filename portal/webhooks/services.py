"""Webhook writes: endpoints and their secrets, the event outbox, delivery attempts.

``webhook_event_emit`` is what an event's announcement becomes (portal/core/changes.py:
``announce_event``; receivers.py connects the two). It writes the event and one delivery
per endpoint that wants it, in the caller's transaction: a committed change always has
its deliveries and a rolled-back one never does. After commit each delivery is queued;
the beat task ``webhooks_dispatch_due`` picks up whatever that missed (broker down).

Analytics' metering-lag alert calls ``webhook_event_emit(event_type="metering.lag_exceeded",
lag_seconds=..., threshold_seconds=...)`` (any further keyword facts go into ``data``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from portal.accounts.selectors import organization_admin_emails
from portal.audit.services import audit_record, model_snapshot
from portal.core.errors import ApplicationError, Conflict, NotAllowed
from portal.keys.selectors import api_keys_expiring
from portal.webhooks import crypto, outbound
from portal.webhooks.events import EVENT_TYPES, TEST_EVENT, event_types_for
from portal.webhooks.models import (
    DeliveryStatus,
    KeyExpiryNotice,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

if TYPE_CHECKING:
    from portal.accounts.models import Organization, User

logger = logging.getLogger(__name__)

ENDPOINT_FIELDS = ["organization_id", "url", "description", "event_types", "is_enabled", "secret_prefix"]
DEFAULT_ROTATION_OVERLAP = dt.timedelta(hours=24)
MAX_ROTATION_OVERLAP = dt.timedelta(days=7)
# An endpoint whose deliveries have failed without a success for this long is disabled.
DISABLE_AFTER = dt.timedelta(days=3)
# How long an attempt holds its delivery: longer than any attempt can take, so a second
# worker never sends it concurrently; if the worker dies, the delivery is due again after it.
ATTEMPT_LEASE = dt.timedelta(minutes=2)
# A task queued with a countdown may start a moment before the stored due time.
EARLY_SLACK = dt.timedelta(seconds=1)
KEY_EXPIRY_NOTICE_DAYS = (7, 1)
EVENT_RETENTION = dt.timedelta(days=30)


@dataclass(frozen=True)
class CreatedEndpoint:
    """The only object that holds a new endpoint's secret. Show ``secret`` once, then drop it."""

    endpoint: WebhookEndpoint
    secret: str


def max_attempts() -> int:
    return len(settings.WEBHOOK_RETRY_SCHEDULE) + 1


# --- endpoints --------------------------------------------------------------------------


def _check_url(url: str) -> None:
    try:
        outbound.url_check(url, outbound.OutboundPolicy.from_settings())
    except outbound.TargetRefused as exc:
        raise ApplicationError(str(exc), fields={"url": [str(exc)]}) from exc


def _check_event_types(event_types: list[str], *, operator: bool) -> list[str]:
    allowed = event_types_for(operator=operator)
    unknown = [e for e in event_types if e not in allowed]
    if unknown:
        message = f"Unknown or not allowed event types: {', '.join(sorted(unknown))}."
        raise ApplicationError(message, fields={"events": [message]})
    if not event_types:
        raise ApplicationError("Choose at least one event type.", fields={"events": ["Choose at least one."]})
    return sorted(set(event_types))


def _audit(endpoint: WebhookEndpoint, *, actor: User, action: str, before: dict[str, Any] | None = None) -> None:
    audit_record(
        actor=actor,
        action=action,
        obj=endpoint,
        before=before,
        after=model_snapshot(endpoint, ENDPOINT_FIELDS) if endpoint.pk else None,
        organization_id=endpoint.organization_id,
    )


@transaction.atomic
def webhook_endpoint_create(
    *, organization: Organization | None, url: str, event_types: list[str], actor: User, description: str = ""
) -> CreatedEndpoint:
    """``organization`` None makes an operators' platform-wide endpoint (operators only)."""
    if organization is None and not actor.is_staff:
        raise NotAllowed("Only operators may create platform-wide endpoints.")
    _check_url(url)
    types = _check_event_types(event_types, operator=organization is None)
    secret = crypto.secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url=url,
        description=description,
        event_types=types,
        secret_encrypted=crypto.secret_encrypt(secret),
        secret_prefix=crypto.secret_display_prefix(secret),
        created_by=actor,
    )
    _audit(endpoint, actor=actor, action="webhook_endpoint.create")
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: User,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_enabled: bool | None = None,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = model_snapshot(endpoint, ENDPOINT_FIELDS)
    if url is not None:
        _check_url(url)
        endpoint.url = url
    if event_types is not None:
        endpoint.event_types = _check_event_types(event_types, operator=endpoint.organization_id is None)
    if description is not None:
        endpoint.description = description
    if is_enabled is not None:
        if is_enabled and not endpoint.is_enabled:
            # Re-enabled by a person: the failure clock starts again.
            endpoint.failing_since = None
            endpoint.disabled_reason = ""
        endpoint.is_enabled = is_enabled
    endpoint.save()
    _audit(endpoint, actor=actor, action="webhook_endpoint.update", before=before)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: User) -> None:
    audit_record(
        actor=actor,
        action="webhook_endpoint.delete",
        obj=endpoint,
        before=model_snapshot(endpoint, ENDPOINT_FIELDS),
        organization_id=endpoint.organization_id,
    )
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_secret_rotate(
    *, endpoint: WebhookEndpoint, actor: User, overlap: dt.timedelta = DEFAULT_ROTATION_OVERLAP
) -> CreatedEndpoint:
    """A new secret, shown once. For ``overlap`` the old one keeps signing too (a second
    ``v1,`` signature in the header), so receivers can switch without missing a delivery."""
    if overlap < dt.timedelta(0) or overlap > MAX_ROTATION_OVERLAP:
        raise Conflict(
            "The overlap must be between 0 and 7 days.", fields={"overlap_seconds": ["Between 0 and 604800."]}
        )
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = model_snapshot(endpoint, ENDPOINT_FIELDS)
    secret = crypto.secret_generate()
    if overlap:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_until = timezone.now() + overlap
    else:
        endpoint.previous_secret_encrypted = ""
        endpoint.previous_secret_until = None
    endpoint.secret_encrypted = crypto.secret_encrypt(secret)
    endpoint.secret_prefix = crypto.secret_display_prefix(secret)
    endpoint.save()
    _audit(endpoint, actor=actor, action="webhook_endpoint.rotate_secret", before=before)
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


def endpoint_signing_secrets(endpoint: WebhookEndpoint, *, now: dt.datetime) -> list[str]:
    secrets_ = [crypto.secret_decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        secrets_.append(crypto.secret_decrypt(endpoint.previous_secret_encrypted))
    return secrets_


# --- events: the outbox -------------------------------------------------------------------


def _message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _queue_after_commit(delivery_ids: list[int]) -> None:
    if not delivery_ids:
        return

    def send() -> None:
        from portal.webhooks.tasks import webhook_deliver

        for delivery_id in delivery_ids:
            webhook_deliver.delay(delivery_id)

    # robust: a broker outage must not turn a committed change into an error; the rows
    # are committed and webhooks_dispatch_due queues them later.
    transaction.on_commit(send, robust=True)


def _create_deliveries(event: WebhookEvent, endpoints: list[WebhookEndpoint], now: dt.datetime) -> list[int]:
    rows = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=e, max_attempts=max_attempts(), next_attempt_at=now)
            for e in endpoints
        ]
    )
    ids = [row.pk for row in rows if row.pk is not None]
    if len(ids) != len(rows):  # a backend that does not return ids from bulk_create
        ids = list(WebhookDelivery.objects.filter(event=event).values_list("pk", flat=True))
    return ids


@transaction.atomic
def webhook_event_emit(*, event_type: str, subject: object = None, **details: Any) -> WebhookEvent:
    """Record an event and a delivery to each enabled endpoint that subscribes to it: the
    operators' endpoints, and (unless the type is for operators only) the endpoints of the
    organizations it concerns. Runs in the caller's transaction."""
    kind = EVENT_TYPES.get(event_type)
    if kind is None:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    occurrence = kind.build(subject, details)
    now = timezone.now()
    event = WebhookEvent.objects.create(
        message_id=_message_id(),
        event_type=event_type,
        organization_id=occurrence.organization_id,
        data=occurrence.data,
        created_at=now,
    )
    candidates = WebhookEndpoint.objects.filter(is_enabled=True, organization__isnull=True)
    if not kind.operators_only and occurrence.audience:
        candidates = candidates | WebhookEndpoint.objects.filter(
            is_enabled=True, organization_id__in=occurrence.audience
        )
    # Membership is tested here, not in SQL: SQLite has no JSON "contains" lookup.
    endpoints = [e for e in candidates.order_by("pk") if event_type in e.event_types]
    _queue_after_commit(_create_deliveries(event, endpoints, now))
    return event


@transaction.atomic
def webhook_test_send(*, endpoint: WebhookEndpoint, actor: User) -> WebhookDelivery:
    """The "send test event" button: a ``webhook.test`` event to this endpoint only."""
    now = timezone.now()
    event = WebhookEvent.objects.create(
        message_id=_message_id(),
        event_type=TEST_EVENT,
        organization_id=endpoint.organization_id,
        data={"message": "A test event from Tollway.", "endpoint": endpoint.pk, "sent_by": actor.email},
        created_at=now,
    )
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint, max_attempts=1, next_attempt_at=now)
    _queue_after_commit([delivery.pk])
    return delivery


@transaction.atomic
def webhook_delivery_retry(*, delivery: WebhookDelivery, actor: User) -> WebhookDelivery:
    """One more attempt now, whatever the delivery's state (same webhook-id as before)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status = DeliveryStatus.PENDING
    delivery.max_attempts = delivery.attempts + 1
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "max_attempts", "next_attempt_at"])
    _queue_after_commit([delivery.pk])
    return delivery


# --- delivery --------------------------------------------------------------------------------


def payload_body(event: WebhookEvent) -> bytes:
    """The Standard Webhooks payload: the same bytes on every attempt."""
    payload = {"type": event.event_type, "timestamp": event.created_at.isoformat(), "data": event.data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _owner_emails(endpoint: WebhookEndpoint) -> list[str]:
    emails = set()
    if endpoint.organization_id is not None:
        emails.update(organization_admin_emails(organization_id=endpoint.organization_id))
    if endpoint.created_by is not None:
        emails.add(endpoint.created_by.email)
    return sorted(emails)


def _endpoint_disable(endpoint: WebhookEndpoint, *, now: dt.datetime) -> None:
    endpoint.is_enabled = False
    endpoint.disabled_reason = f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every delivery failed for 3 days."
    recipients = _owner_emails(endpoint)
    url = endpoint.url

    def notify() -> None:
        send_mail(
            subject="[Tollway] A webhook endpoint was disabled",
            message=(
                f"Deliveries to {url} have failed for 3 days, so Tollway has disabled this endpoint.\n"
                "Fix the receiver, then enable the endpoint again on its page; failed deliveries can be retried there."
            ),
            from_email=None,
            recipient_list=recipients,
        )

    if recipients:
        transaction.on_commit(notify, robust=True)


def _record(
    delivery_id: int,
    *,
    now: dt.datetime,
    succeeded: bool,
    status_code: int | None = None,
    latency_ms: int | None = None,
    excerpt: str = "",
    error: str = "",
) -> WebhookDelivery:
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery_id)
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = status_code
        delivery.last_latency_ms = latency_ms
        delivery.last_response_excerpt = excerpt
        delivery.last_error = error[:300]
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        if succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.next_attempt_at = None
            endpoint.failing_since = None
        else:
            if delivery.attempts >= delivery.max_attempts:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
            else:
                schedule = settings.WEBHOOK_RETRY_SCHEDULE
                delay = schedule[min(delivery.attempts, len(schedule)) - 1]
                delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
            if endpoint.failing_since is None:
                endpoint.failing_since = now
            elif endpoint.is_enabled and now - endpoint.failing_since >= DISABLE_AFTER:
                _endpoint_disable(endpoint, now=now)
        endpoint.save(update_fields=["failing_since", "is_enabled", "disabled_reason", "updated_at"])
        delivery.save()
    return delivery


def webhook_delivery_attempt(
    *, delivery_id: int, resolve: outbound.Resolver = outbound.system_resolve, clock: Callable[[], float] = time.time
) -> WebhookDelivery | None:
    """Make one attempt if the delivery is due; returns it as recorded, or None when it was
    not due (delivered, given up, not yet time, or another worker holds it). No transaction
    is held while the request is in flight."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now + EARLY_SLACK
    ).update(next_attempt_at=now + ATTEMPT_LEASE)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.is_enabled and event.event_type != TEST_EVENT:
        return _record(delivery_id, now=now, succeeded=False, error="The endpoint is disabled.")
    body = payload_body(event)
    timestamp = int(clock())
    try:
        signature = crypto.signature_header(
            endpoint_signing_secrets(endpoint, now=now), message_id=event.message_id, timestamp=timestamp, body=body
        )
    except crypto.SecretUnreadable as exc:
        logger.error("webhook delivery %s: %s", delivery_id, exc)
        return _record(delivery_id, now=now, succeeded=False, error=str(exc))
    headers = {
        "webhook-id": event.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "User-Agent": "Tollway-Webhooks/1",
    }
    try:
        response = outbound.post(endpoint.url, body=body, headers=headers, resolve=resolve)
    except outbound.TargetRefused as exc:
        return _record(delivery_id, now=timezone.now(), succeeded=False, error=f"Refused: {exc}")
    except outbound.DeliveryFailed as exc:
        return _record(delivery_id, now=timezone.now(), succeeded=False, error=str(exc))
    return _record(
        delivery_id,
        now=timezone.now(),
        succeeded=200 <= response.status_code < 300,
        status_code=response.status_code,
        latency_ms=response.latency_ms,
        excerpt=response.excerpt,
        error="" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
    )


# --- periodic work -----------------------------------------------------------------------------


def webhook_key_expiry_scan(*, now: dt.datetime | None = None) -> int:
    """Emit ``key.expiring`` once when a key is 7 days from expiry and once at 1 day.
    A key first seen within a day of expiry gets the 1-day notice only."""
    now = now or timezone.now()
    emitted = 0
    horizon = now + dt.timedelta(days=max(KEY_EXPIRY_NOTICE_DAYS))
    for key in api_keys_expiring(start=now, end=horizon):
        assert key.expires_at is not None  # the selector filters on it
        remaining = key.expires_at - now
        days = min(d for d in KEY_EXPIRY_NOTICE_DAYS if remaining <= dt.timedelta(days=d))
        with transaction.atomic():
            _, created = KeyExpiryNotice.objects.get_or_create(key_id=key.pk, days=days, expires_at=key.expires_at)
            if created:
                webhook_event_emit(event_type="key.expiring", subject=key, expires_in_days=days)
                emitted += 1
    return emitted


def webhook_events_prune(*, before: dt.datetime) -> int:
    """Forget events older than ``before`` with nothing left to deliver."""
    old = WebhookEvent.objects.filter(created_at__lt=before).exclude(deliveries__status=DeliveryStatus.PENDING)
    deleted, _ = old.delete()
    KeyExpiryNotice.objects.filter(expires_at__lt=before).delete()
    return deleted
