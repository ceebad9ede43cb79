"""CSV exports cannot smuggle a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import time

import pytest

from analytics.exports import csv_safe
from portal.keys.models import Application
from tests.analytics.conftest import commit_requests, make_request


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_it_quotes_cells_that_start_a_formula(evil):
    assert csv_safe(evil) == "'" + evil


def test_it_leaves_ordinary_values_alone():
    assert csv_safe("Acme Shop") == "Acme Shop"
    assert csv_safe(-5) == -5  # numbers are numbers, not text a spreadsheet evaluates


@pytest.mark.django_db
def test_the_operator_export_neutralises_an_application_name(client, olivia, alice_app, free_plan):
    Application.objects.filter(pk=alice_app.pk).update(name='=cmd|" /C calc"!A0')
    v1 = free_plan.api.versions.get(label="v1")
    events = [make_request(ts=int(time.time() * 1000) - 5000, application_id=alice_app.pk, api_id=free_plan.api_id,
                         version=v1.label, subscription_id=0, plan_id=0)]
    commit_requests(events, consumer="test")
    client.force_login(olivia)
    response = client.get("/analytics/deprecations/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["api_name", "version"]
    [row] = rows[1:]
    assert row[5] == "'=cmd|\" /C calc\"!A0"
    assert row[6] == "1"
