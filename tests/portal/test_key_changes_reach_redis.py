"""Issuing, rotating, revoking and expiring a key reach Redis with an invalidation message."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from gateway import contract
from portal.keys import services as keys
from portal.keys.models import ApiKey


def _record(redis_client, key: ApiKey) -> contract.KeyRecord:
    raw = redis_client.get(contract.key_key(key.key_hash))
    assert raw is not None, "key was not published"
    return contract.KeyRecord.from_json(raw)


def _invalidations(pubsub) -> list[contract.Invalidation]:
    found = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            found.append(contract.Invalidation.from_json(message["data"]))
    return found


@pytest.fixture
def listener(redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe(contract.INVALIDATION_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    yield pubsub
    pubsub.close()


@pytest.mark.django_db
def test_it_publishes_an_issued_key(alice, alice_app, redis_client, listener, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        issued = keys.api_key_issue(application=alice_app, label="ci", actor=alice)

    record = _record(redis_client, issued.key)
    assert record.status == "active"
    assert record.application_id == alice_app.pk
    assert record.prefix == issued.key.prefix
    assert contract.Invalidation(kind="key", id=issued.key.key_hash) in [
        contract.Invalidation(kind=i.kind, id=i.id) for i in _invalidations(listener)
    ]


@pytest.mark.django_db
def test_it_publishes_the_rotation_grace(alice, alice_app, redis_client, django_capture_on_commit_callbacks):
    old = keys.api_key_issue(application=alice_app, actor=alice).key
    with django_capture_on_commit_callbacks(execute=True):
        new = keys.api_key_rotate(key=old, grace=dt.timedelta(hours=2), actor=alice).key

    old_record, new_record = _record(redis_client, old), _record(redis_client, new)
    assert old_record.status == "active"
    grace_until = dt.datetime.fromisoformat(old_record.grace_until)
    assert dt.timedelta(hours=1, minutes=59) < grace_until - timezone.now() <= dt.timedelta(hours=2)
    assert new_record.status == "active"
    assert new_record.grace_until is None


@pytest.mark.django_db
def test_it_publishes_a_revocation(alice, alice_app, redis_client, listener, django_capture_on_commit_callbacks):
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    with django_capture_on_commit_callbacks(execute=True):
        keys.api_key_revoke(key=key, actor=alice)

    assert _record(redis_client, key).status == "revoked"
    kinds = {(i.kind, i.id) for i in _invalidations(listener)}
    assert ("key", key.key_hash) in kinds


@pytest.mark.django_db
def test_it_never_unrevokes_a_key(alice, alice_app):
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    keys.api_key_revoke(key=key, actor=alice)
    keys.api_key_revoke(key=key, actor=alice)

    key.refresh_from_db()
    assert key.status == "revoked"
    with pytest.raises(Exception, match="Only an active key can be rotated"):
        keys.api_key_rotate(key=key, grace=dt.timedelta(0), actor=alice)


@pytest.mark.django_db
def test_it_publishes_the_expiry_and_republishes_when_it_lapses(
    alice, alice_app, redis_client, listener, django_capture_on_commit_callbacks
):
    expires = timezone.now() + dt.timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        key = keys.api_key_issue(application=alice_app, expires_at=expires, actor=alice).key
    assert dt.datetime.fromisoformat(_record(redis_client, key).expires_at) == expires
    _invalidations(listener)

    with django_capture_on_commit_callbacks(execute=True):
        count = keys.api_keys_republish_lapsed(
            since=expires - dt.timedelta(minutes=1), until=expires + dt.timedelta(minutes=1)
        )

    assert count == 1
    assert ("key", key.key_hash) in {(i.kind, i.id) for i in _invalidations(listener)}


@pytest.mark.django_db
def test_it_publishes_a_deleted_applications_keys_as_revoked(
    alice, alice_app, redis_client, django_capture_on_commit_callbacks
):
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    key_hash = key.key_hash
    with django_capture_on_commit_callbacks(execute=True):
        keys.application_delete(application=alice_app, actor=alice)

    assert json.loads(redis_client.get(contract.key_key(key_hash)))["status"] == "revoked"
    assert redis_client.get(contract.app_key(alice_app.pk)) is None
