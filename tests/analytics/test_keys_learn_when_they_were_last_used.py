"""The metering consumer sets ApiKey.last_used_at: the gateway never writes the database."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from analytics.ingest import services
from portal.keys import services as keys
from tests.analytics.conftest import make_event


@pytest.mark.django_db
def test_it_records_the_latest_admitted_call_per_key(alice, alice_app):
    used = keys.api_key_issue(application=alice_app, actor=alice).key
    idle = keys.api_key_issue(application=alice_app, actor=alice).key
    now_ms = int(time.time() * 1000)
    events = [
        make_event(ts=now_ms - 60_000, application_id=alice_app.pk, key_prefix=used.prefix),
        make_event(ts=now_ms - 5_000, application_id=alice_app.pk, key_prefix=used.prefix),
        make_event(ts=now_ms, application_id=alice_app.pk, key_prefix=idle.prefix, decision="rate_limited", status=429),
    ]

    services.metering_batch_commit(events=events, consumer="test")

    used.refresh_from_db()
    idle.refresh_from_db()
    assert used.last_used_at == dt.datetime.fromtimestamp((now_ms - 5_000) / 1000, tz=dt.UTC)
    assert idle.last_used_at is None  # a refused request is not a use


@pytest.mark.django_db
def test_it_never_moves_last_used_backwards(alice, alice_app):
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    now_ms = int(time.time() * 1000)
    services.metering_batch_commit(
        events=[make_event(ts=now_ms, application_id=alice_app.pk, key_prefix=key.prefix)], consumer="test"
    )

    services.metering_batch_commit(
        events=[make_event(ts=now_ms - 3_600_000, application_id=alice_app.pk, key_prefix=key.prefix)],
        consumer="test",
    )

    key.refresh_from_db()
    assert key.last_used_at == dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
