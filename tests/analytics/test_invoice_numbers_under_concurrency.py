"""Two issuers at once on PostgreSQL: the counter row's lock makes them take turns,
so numbers are unique and gapless even when some issuing transactions roll back."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from analytics.billing import services as billing
from analytics.models import InvoiceNumberCounter
from tests.services import requires_postgres

pytestmark = [
    pytest.mark.django_db(transaction=True),
    requires_postgres("row locks: SQLite serialises whole-database writes (run with TOLLWAY_TEST_DB=postgres)"),
]

ISSUERS = 8
EACH = 10


def test_concurrent_issuers_get_unique_gapless_numbers():
    taken: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(ISSUERS)

    def issue(worker: int) -> None:
        try:
            start.wait()
            for i in range(EACH):
                try:
                    with transaction.atomic():
                        number = billing.invoice_number_next(year=2026)
                        if (worker + i) % 3 == 0:
                            raise LookupError("this issue fails: its number must come back")
                        taken.append(number)
                except LookupError:
                    pass
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(w,)) for w in range(ISSUERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(taken) == len(set(taken))
    assert sorted(taken) == [f"TW-2026-{n:06d}" for n in range(1, len(taken) + 1)]
    assert InvoiceNumberCounter.objects.get(year=2026).last == len(taken)
