"""The transactional outbox: an event and its deliveries are written in the transaction
of the change. A committed change always has them (even when the broker is down: the
beat scan sends them later); a rolled-back change never does, and nothing is sent."""

from __future__ import annotations

import pytest
from django.db import connections, transaction

from portal.keys import services as keys
from portal.plans import services as plans
from portal.webhooks import services as webhooks
from portal.webhooks import tasks
from portal.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from tests.portal.webhooks.conftest import deliver_pending, verified

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def _count_from_another_connection(table: str) -> int:
    """What a worker would see: a second connection, outside the test's transaction."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (a fixed table name)
            return int(cursor.fetchone()[0])
    finally:
        other.close()


def test_a_rolled_back_change_produces_no_event(listener, alice, acme, alice_app, free_plan):
    webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["subscription.cancelled", "key.revoked"], actor=alice
    )
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    before = WebhookEvent.objects.count()  # the fixtures' own (echo v1 was deprecated)

    inside = []

    def change_then_fail() -> None:
        with transaction.atomic():
            plans.subscription_cancel(subscription=subscription, actor=alice)
            keys.api_key_revoke(key=key, actor=alice)
            inside.append(WebhookEvent.objects.count())
            raise Boom

    with pytest.raises(Boom):
        change_then_fail()
    assert inside == [before + 2]  # written, inside the transaction...

    assert WebhookEvent.objects.count() == before  # ...and gone with it
    assert WebhookDelivery.objects.count() == 0
    assert tasks.webhooks_dispatch_due() == 0
    assert deliver_pending() == []
    assert listener.received == []


def test_a_committed_change_always_produces_its_event(monkeypatch, listener, alice, acme, alice_app):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    )
    key = keys.api_key_issue(application=alice_app, actor=alice).key

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    # The after-commit send fails: the change still commits, and so does its event.
    monkeypatch.setattr(tasks.webhook_deliver, "delay", broker_down)
    events_before = WebhookEvent.objects.count()
    keys.api_key_revoke(key=key, actor=alice)

    assert _count_from_another_connection("webhooks_webhookevent") == events_before + 1
    assert _count_from_another_connection("webhooks_webhookdelivery") == 1
    assert listener.received == []

    # The beat scan finds it; the worker's task (run here in-process) delivers it.
    monkeypatch.setattr(tasks.webhook_deliver, "delay", lambda delivery_id: tasks.webhook_deliver(delivery_id))
    assert tasks.webhooks_dispatch_due() == 1

    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
    [received] = listener.received
    assert verified(created.secret, received)["type"] == "key.revoked"


def test_the_after_commit_send_queues_each_delivery_once(monkeypatch, listener, alice, acme, alice_app):
    webhooks.webhook_endpoint_create(organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice)
    queued = []
    monkeypatch.setattr(tasks.webhook_deliver, "delay", queued.append)

    with transaction.atomic():
        keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)
        assert queued == []  # nothing leaves before the commit

    assert queued == [WebhookDelivery.objects.get().pk]
    # Queued twice (after commit and by the beat scan): the claim lets one attempt through.
    assert tasks.webhook_deliver(queued[0]) == "succeeded"
    assert tasks.webhook_deliver(queued[0]) == "not-due"
    assert len(listener.received) == 1
