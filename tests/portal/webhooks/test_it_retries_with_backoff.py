"""A listener that fails at first: the delivery is retried on the documented schedule,
with the same webhook-id and a fresh, valid signature each time, until it succeeds;
one that never recovers is given up after the last attempt. A real Celery worker
does the same on its own (PostgreSQL: the worker is another process)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from portal.keys import services as keys
from portal.webhooks import services as webhooks
from portal.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.analytics.conftest import requires_postgres, wait_until
from tests.portal.webhooks.conftest import Reply, deliver_pending, make_due, verified


def _revoke_a_key(alice, alice_app):
    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)


@pytest.mark.django_db
def test_it_backs_off_and_keeps_the_webhook_id(settings, listener, alice, acme, alice_app):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800]
    created = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    )
    listener.replies = [Reply(500, b"down"), Reply(503, b"still down")]
    _revoke_a_key(alice, alice_app)

    started = timezone.now()
    [first] = deliver_pending()
    assert first.status == DeliveryStatus.PENDING
    assert first.attempts == 1
    assert first.last_status_code == 500
    assert first.last_response_excerpt == "down"
    assert dt.timedelta(seconds=4) <= first.next_attempt_at - started <= dt.timedelta(seconds=6)
    assert deliver_pending() == []  # not due yet: nothing is sent early

    make_due()
    [second] = deliver_pending()
    assert (second.attempts, second.last_status_code) == (2, 503)
    assert dt.timedelta(seconds=299) <= second.next_attempt_at - second.last_attempt_at <= dt.timedelta(seconds=301)

    make_due()
    [third] = deliver_pending()
    assert third.status == DeliveryStatus.SUCCEEDED
    assert third.attempts == 3
    assert third.next_attempt_at is None
    assert third.last_latency_ms is not None

    assert len(listener.received) == 3
    assert len({r.headers["webhook-id"] for r in listener.received}) == 1
    payloads = [verified(created.secret, r) for r in listener.received]
    assert payloads[0] == payloads[1] == payloads[2]  # the same body bytes each time


@pytest.mark.django_db
def test_it_gives_up_after_the_last_attempt_and_a_person_can_retry(settings, listener, alice, acme, alice_app):
    settings.WEBHOOK_RETRY_SCHEDULE = [1, 1]
    webhooks.webhook_endpoint_create(organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice)
    listener.default = Reply(500, b"no")
    _revoke_a_key(alice, alice_app)
    for _ in range(3):
        make_due()
        deliver_pending()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.max_attempts) == (DeliveryStatus.FAILED, 3, 3)
    make_due()
    assert deliver_pending() == []

    listener.default = Reply(204, b"")
    webhooks.webhook_delivery_retry(delivery=delivery, actor=alice)
    [retried] = deliver_pending()
    assert (retried.status, retried.attempts) == (DeliveryStatus.SUCCEEDED, 4)
    assert len({r.headers["webhook-id"] for r in listener.received}) == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_until_the_listener_recovers(start_worker, listener, alice, acme, alice_app):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    )
    listener.replies = [Reply(500, b"down"), Reply(502, b"down")]
    worker = start_worker("webhooks", TOLLWAY_WEBHOOK_RETRY_SCHEDULE="1,2")

    _revoke_a_key(alice, alice_app)  # commits: the after-commit hook queues the delivery

    wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).exists(),
        timeout=60,
        message=f"delivery never succeeded; worker log:\n{worker.output()}",
    )
    assert len(listener.received) == 3
    gaps = [b.at - a.at for a, b in zip(listener.received, listener.received[1:], strict=False)]
    assert gaps[0] >= 0.9
    assert gaps[1] >= 1.9
    assert len({r.headers["webhook-id"] for r in listener.received}) == 1
    for received in listener.received:
        assert verified(created.secret, received)["type"] == "key.revoked"
