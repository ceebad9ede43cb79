"""Regressions for what schemathesis found (tests/portal/api/
test_it_conforms_to_its_openapi_schema.py): a date-time filter with a UTC offset that
Python accepts and PostgreSQL does not ("+22:06") was a 500 on /api/v1/usage/ and
/api/v1/audit/. Offsets are now converted to UTC first; a date that cannot be is a 400."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db
ODD = ["0056-07-20T01:02:20+22:06", "2026-01-01T00:00:00-23:59", "0001-01-01T00:00:00+05:00",
       "9999-12-31T23:59:59-05:00", "2026-11-22T10:00:00Z"]


@pytest.mark.parametrize("value", ODD)
def test_usage_filters_take_any_offset(client, alice, value):
    client.force_login(alice)
    for path in ("/api/v1/usage/", "/api/v1/usage/summary/"):
        for name in ("start", "end"):
            response = client.get(path, {name: value})
            assert response.status_code in (200, 400), (path, name, value, response.status_code)


@pytest.mark.parametrize("value", ODD)
def test_audit_filters_take_any_offset(client, olivia, value):
    client.force_login(olivia)
    for name in ("created_after", "created_before"):
        response = client.get("/api/v1/audit/", {name: value})
        assert response.status_code in (200, 400), (name, value, response.status_code)


def test_an_offset_is_converted_not_ignored(client, olivia, alice_app):
    from portal.audit.models import AuditEvent

    client.force_login(olivia)
    created = AuditEvent.objects.get(action="application.create").created_at
    # The same instant written with a +22:06 offset: the event is at or after it, not before.
    from datetime import timedelta, timezone

    same_instant = created.astimezone(timezone(timedelta(hours=22, minutes=6))).isoformat()
    after = client.get("/api/v1/audit/", {"created_after": same_instant, "action": "application.create"})
    before = client.get("/api/v1/audit/", {"created_before": same_instant, "action": "application.create"})

    assert after.status_code == 200
    assert len(after.json()["results"]) == 1
    assert before.json()["results"] == []
