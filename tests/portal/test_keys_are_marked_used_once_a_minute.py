"""api_keys_mark_used: the metering consumers tell the portal when keys were last used.

Batched (a few statements for any number of keys), at most one write per key per
minute, forwards only, and deadlock-free between consumers committing at the same time.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from portal.keys import services as keys
from portal.keys.models import ApiKey
from tests.services import requires_postgres as requires_postgres_because

T0 = dt.datetime(2026, 11, 3, 12, 0, 0, tzinfo=dt.UTC)


def _last_used(key: Any) -> dt.datetime | None:
    key.refresh_from_db()
    return key.last_used_at


@pytest.fixture
def two_keys(alice: Any, alice_app: Any) -> tuple[Any, Any]:
    return (keys.api_key_issue(application=alice_app, actor=alice).key,
            keys.api_key_issue(application=alice_app, actor=alice).key)


@pytest.mark.django_db
def test_it_records_each_keys_latest_use(two_keys):
    first, second = two_keys

    updated = keys.api_keys_mark_used(last_seen={first.pk: T0, second.pk: T0 + dt.timedelta(seconds=5)})

    assert updated == 2
    assert _last_used(first) == T0
    assert _last_used(second) == T0 + dt.timedelta(seconds=5)


@pytest.mark.django_db
def test_it_writes_a_key_at_most_once_a_minute(two_keys):
    key, _ = two_keys
    keys.api_keys_mark_used(last_seen={key.pk: T0})

    assert keys.api_keys_mark_used(last_seen={key.pk: T0 + dt.timedelta(seconds=59)}) == 0
    assert _last_used(key) == T0

    assert keys.api_keys_mark_used(last_seen={key.pk: T0 + dt.timedelta(seconds=61)}) == 1
    assert _last_used(key) == T0 + dt.timedelta(seconds=61)


@pytest.mark.django_db
def test_it_never_moves_last_used_backwards(two_keys):
    key, _ = two_keys
    keys.api_keys_mark_used(last_seen={key.pk: T0})

    assert keys.api_keys_mark_used(last_seen={key.pk: T0 - dt.timedelta(hours=1)}) == 0

    assert _last_used(key) == T0


@pytest.mark.django_db
def test_it_ignores_keys_that_do_not_exist(two_keys):
    key, _ = two_keys

    assert keys.api_keys_mark_used(last_seen={key.pk: T0, 999_999: T0}) == 1
    assert keys.api_keys_mark_used(last_seen={}) == 0


@pytest.mark.django_db
def test_it_marks_many_keys_in_a_few_statements(alice, alice_app):
    issued = [keys.api_key_issue(application=alice_app, actor=alice).key for _ in range(450)]
    last_seen = {k.pk: T0 + dt.timedelta(seconds=i % 50) for i, k in enumerate(issued)}

    with CaptureQueriesContext(connection) as queries:
        updated = keys.api_keys_mark_used(last_seen=last_seen)

    assert updated == 450
    writes = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"].upper()]
    # One statement on PostgreSQL; one per 200 keys on SQLite.
    assert len(writes) <= 3, writes
    stored = dict(ApiKey.objects.filter(pk__in=last_seen).values_list("pk", "last_used_at"))
    assert stored == last_seen


# --- two consumers at once, on PostgreSQL ---------------------------------------------------

requires_postgres = requires_postgres_because(
    "row locks and deadlocks are PostgreSQL's; SQLite has one writer at a time"
)

ROUNDS_S = 3.0  # how long the two callers race
HOLD_S = 0.002  # each caller keeps its transaction (and its row locks) open this long after the call


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_callers_sharing_keys_never_deadlock(alice, alice_app):
    issued = [keys.api_key_issue(application=alice_app, actor=alice).key.pk for _ in range(60)]
    errors: list[BaseException] = []
    rounds = [0, 0]
    start = threading.Barrier(2)

    def caller(index: int) -> None:
        # Opposite key orders: a writer that locked keys in the order it was given would
        # deadlock with the other within a few rounds.
        order = issued if index == 0 else list(reversed(issued))
        try:
            start.wait()
            deadline = time.monotonic() + ROUNDS_S
            minute = 0
            while time.monotonic() < deadline:
                minute += 1
                # A new minute each round, so every key is due and every round takes the row locks.
                used_at = T0 + dt.timedelta(minutes=minute, seconds=index)
                with transaction.atomic():
                    keys.api_keys_mark_used(last_seen={pk: used_at for pk in order})
                    time.sleep(HOLD_S)
                rounds[index] += 1
        except BaseException as exc:  # a deadlock arrives as django.db.OperationalError
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=ROUNDS_S + 30)

    assert not errors, errors
    assert min(rounds) > 5, rounds  # both really ran, many times over
    # Both wrote forwards only: every key holds the latest time either caller had for it.
    latest = dict(ApiKey.objects.filter(pk__in=issued).values_list("pk", "last_used_at"))
    assert len(set(latest.values())) == 1
