"""The metering consumer sets ApiKey.last_used_at: the gateway never writes the database."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from portal.keys import services as keys
from tests.analytics.conftest import commit_requests, make_request


@pytest.mark.django_db
def test_it_records_the_latest_admitted_call_per_key(alice, alice_app):
    used = keys.api_key_issue(application=alice_app, actor=alice).key
    idle = keys.api_key_issue(application=alice_app, actor=alice).key
    now_ms = int(time.time() * 1000)
    events = [
        make_request(ts=now_ms - 60_000, application_id=alice_app.pk, key_prefix=used.prefix),
        make_request(ts=now_ms - 5_000, application_id=alice_app.pk, key_prefix=used.prefix),
        make_request(
            ts=now_ms, application_id=alice_app.pk, key_prefix=idle.prefix, decision="rate_limited", status=429
        ),
    ]

    commit_requests(events)

    used.refresh_from_db()
    idle.refresh_from_db()
    assert used.last_used_at == dt.datetime.fromtimestamp((now_ms - 5_000) / 1000, tz=dt.UTC)
    assert idle.last_used_at is None  # a refused request is not a use


@pytest.mark.django_db
def test_it_never_moves_last_used_backwards(alice, alice_app):
    key = keys.api_key_issue(application=alice_app, actor=alice).key
    now_ms = int(time.time() * 1000)
    commit_requests([make_request(ts=now_ms, application_id=alice_app.pk, key_prefix=key.prefix)])

    commit_requests([make_request(ts=now_ms - 3_600_000, application_id=alice_app.pk, key_prefix=key.prefix)])

    key.refresh_from_db()
    assert key.last_used_at == dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
