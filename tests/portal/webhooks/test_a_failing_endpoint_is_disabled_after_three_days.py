"""An endpoint whose deliveries have failed for 3 days is disabled and its owners emailed;
a success in between resets the clock."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from portal.keys import services as keys
from portal.webhooks import services as webhooks
from portal.webhooks.models import WebhookEndpoint
from tests.portal.webhooks.conftest import Reply, deliver_pending

pytestmark = pytest.mark.django_db


def _revoke_a_key(alice, alice_app):
    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)


def test_it_disables_and_emails_after_three_days_of_failures(
    django_capture_on_commit_callbacks, listener, alice, bob, acme, alice_app
):
    endpoint = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=bob
    ).endpoint
    listener.default = Reply(500, b"broken")
    _revoke_a_key(alice, alice_app)
    deliver_pending()
    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert endpoint.failing_since is not None

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(days=3))
    _revoke_a_key(alice, alice_app)
    with django_capture_on_commit_callbacks(execute=True):
        deliver_pending()

    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert "failed for 3 days" in endpoint.disabled_reason
    [email] = mail.outbox
    assert sorted(email.to) == ["alice@acme.test", "bob@acme.test"]  # the owner and whoever made it
    assert listener.url() in email.body

    # Nothing more is sent to it until a person enables it again.
    received = len(listener.received)
    _revoke_a_key(alice, alice_app)
    deliver_pending()
    assert len(listener.received) == received
    webhooks.webhook_endpoint_update(endpoint=endpoint, actor=alice, is_enabled=True)
    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert endpoint.failing_since is None
    assert endpoint.disabled_reason == ""


def test_a_success_resets_the_failure_clock(listener, alice, acme, alice_app):
    endpoint = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    ).endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(days=2))
    _revoke_a_key(alice, alice_app)
    deliver_pending()

    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert endpoint.failing_since is None
    assert mail.outbox == []
