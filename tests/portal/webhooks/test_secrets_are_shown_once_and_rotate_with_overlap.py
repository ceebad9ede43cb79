"""A signing secret is whsec_ + base64 (Standard Webhooks), stored only encrypted, shown in
the response that made it and never again; a rotation signs with both secrets during
the overlap, then with the new one only."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import WebhookVerificationError

from portal.keys import services as keys
from portal.webhooks import crypto
from portal.webhooks import services as webhooks
from portal.webhooks.models import WebhookEndpoint
from tests.portal.webhooks.conftest import deliver_pending, verified

pytestmark = pytest.mark.django_db


def _revoke_a_key(alice, alice_app):
    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)


def test_the_secret_is_standard_and_stored_only_encrypted(alice, acme):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url="https://hooks.example.com/x", event_types=["key.revoked"], actor=alice
    )
    assert created.secret.startswith("whsec_")
    assert len(base64.b64decode(created.secret.removeprefix("whsec_"))) == 32
    row = WebhookEndpoint.objects.get(pk=created.endpoint.pk)
    stored = json.dumps([getattr(row, f.attname) for f in WebhookEndpoint._meta.concrete_fields], default=str)
    assert created.secret not in stored
    assert created.secret.removeprefix("whsec_") not in stored
    assert crypto.secret_decrypt(row.secret_encrypted) == created.secret  # what signing needs


def test_an_old_encryption_key_still_decrypts_from_the_fallbacks(settings, alice, acme):
    created = webhooks.webhook_endpoint_create(
        organization=acme, url="https://hooks.example.com/x", event_types=["key.revoked"], actor=alice
    )
    old = settings.WEBHOOK_SECRET_KEY
    settings.WEBHOOK_SECRET_KEY = "a-new-webhook-encryption-key-0123456789"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.secret_decrypt(created.endpoint.secret_encrypted)
    settings.WEBHOOK_SECRET_KEY_FALLBACKS = [old]
    assert crypto.secret_decrypt(created.endpoint.secret_encrypted) == created.secret


def test_a_rotation_signs_with_both_secrets_during_the_overlap(listener, alice, acme, alice_app):
    old = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    )
    new = webhooks.webhook_endpoint_secret_rotate(endpoint=old.endpoint, actor=alice, overlap=dt.timedelta(hours=1))
    assert new.secret != old.secret
    _revoke_a_key(alice, alice_app)
    deliver_pending()

    [during] = listener.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verified(old.secret, during)["type"] == "key.revoked"  # receivers still on the old secret
    assert verified(new.secret, during)["type"] == "key.revoked"  # and those already switched

    WebhookEndpoint.objects.filter(pk=old.endpoint.pk).update(
        previous_secret_until=timezone.now() - dt.timedelta(seconds=1)
    )
    _revoke_a_key(alice, alice_app)
    deliver_pending()

    after = listener.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verified(new.secret, after)["type"] == "key.revoked"
    with pytest.raises(WebhookVerificationError):
        verified(old.secret, after)


def test_a_rotation_without_overlap_drops_the_old_secret_at_once(listener, alice, acme, alice_app):
    old = webhooks.webhook_endpoint_create(
        organization=acme, url=listener.url(), event_types=["key.revoked"], actor=alice
    )
    new = webhooks.webhook_endpoint_secret_rotate(endpoint=old.endpoint, actor=alice, overlap=dt.timedelta(0))
    _revoke_a_key(alice, alice_app)
    deliver_pending()

    [received] = listener.received
    verified(new.secret, received)
    with pytest.raises(WebhookVerificationError):
        verified(old.secret, received)
