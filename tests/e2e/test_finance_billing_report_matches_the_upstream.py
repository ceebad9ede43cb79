"""Finance: the billing report's CSV totals equal the number of requests the upstream
served, by the upstream's own count, across organizations, plans and refusals.

Acme calls on Pro (quota 120 a day, so 30 of its 150 calls are refused with 429 and
never reach the upstream); Globex calls on Free; a revoked key and an unknown key
are refused with 401. Only what the upstream served may be billed, and all of it is.
"""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.conftest import publish_cast, requires_postgres, wait_drained

pytestmark = [requires_postgres, pytest.mark.slow]


def _csv_rows(client: Any, by: str) -> list[dict[str, str]]:
    response = client.get(f"/analytics/billing/?format=csv&by={by}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_billing_report_csv_totals_equal_what_the_upstream_served(make_stack: Any, client: Any) -> None:
    from django.contrib.auth.models import Group

    from portal.accounts.models import Membership, Organization, Role, User
    from portal.keys import services as keys
    from portal.plans import services as plans

    stack = make_stack()
    cast = publish_cast(stack, plan_fields={
        "monthly_price": Decimal("49.00"), "included_requests": 100, "overage_price_per_1000": Decimal("0.50"),
        "quota_per_day": 120,
    })
    free = plans.plan_create(actor=cast.olivia, api=cast.api, slug="basic", name="Basic")
    charlie = User.objects.create_user(email="charlie@globex.test", password="x" * 20, email_verified=True)
    globex = Organization.objects.create(name="Globex", slug="globex")
    Membership.objects.create(organization=globex, user=charlie, role=Role.OWNER)
    globex_app = keys.application_create(organization=globex, name="Globex Tool", actor=charlie)
    plans.subscription_create(application=globex_app, plan=free, actor=charlie)
    globex_key = keys.api_key_issue(application=globex_app, label="ci", actor=charlie)
    revoked = keys.api_key_issue(application=globex_app, label="old", actor=charlie)
    keys.api_key_revoke(key=revoked.key, actor=charlie)
    stack.start_gateway()

    statuses: dict[str, list[int]] = {"acme": [], "globex": [], "revoked": [], "unknown": []}
    acme = statuses["acme"]
    while acme.count(200) < 120 and len(acme) < 400:
        acme.append(stack.call(cast.key).status_code)
        if acme[-1] == 429:
            # Near the quota, an admission lease the other worker holds can refuse a request
            # early (leases never admit more); its sweep gives the rest back within a second.
            time.sleep(0.5)
    for _ in range(30):
        acme.append(stack.call(cast.key).status_code)
    for _ in range(40):
        statuses["globex"].append(stack.call(globex_key.secret, "/echo/v1/report").status_code)
    for _ in range(5):
        statuses["revoked"].append(stack.call(revoked.secret).status_code)
        statuses["unknown"].append(stack.call("tw_" + "x" * 38).status_code)
    assert acme.count(200) == 120, acme
    assert set(acme) <= {200, 429}, acme
    assert acme[-30:] == [429] * 30
    assert statuses["globex"] == [200] * 40
    assert set(statuses["revoked"]) == {401}
    assert set(statuses["unknown"]) == {401}
    served = stack.echo.served()
    assert served == 160

    wait_drained(stack)
    finance = User.objects.create_user(email="fiona@tollway.test", password="x" * 20, email_verified=True)
    finance.groups.add(Group.objects.get_or_create(name="finance")[0])
    client.force_login(finance)

    by_org = _csv_rows(client, "organization")
    assert {r["label"]: int(r["requests"]) for r in by_org} == {"Acme": 120, "Globex": 40}
    for by in ("organization", "api", "plan"):
        assert sum(int(r["requests"]) for r in _csv_rows(client, by)) == served, by
    by_plan = {r["label"]: int(r["requests"]) for r in _csv_rows(client, "plan")}
    assert by_plan == {"Free": 120, "Basic": 40}
