"""Operator: olivia builds and runs an API through the admin, and the gateway follows.

1. Create an API, add v1 from an OpenAPI file, publish it.
2. Set a quota in the admin: the gateway enforces the new quota within 1 s.
3. Deprecate v1: Deprecation/Sunset headers appear (within 1 s) and the deprecation
   report lists the application still calling it, with its calls.
4. Retire v1: callers get 410 (within 1 s).

The 1 s is a behavioural deadline: the gateway is polled until the change shows or
1 s has passed since the admin answered.
"""

from __future__ import annotations

import csv
import email.utils
import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.e2e.conftest import Stack, requires_postgres, wait_drained, wait_for

pytestmark = [requires_postgres, pytest.mark.slow]

OPENAPI = Path(__file__).with_name("echo-openapi.yaml")
PROPAGATION_S = 1.0


def _within_a_second(call: Any, predicate: Any, what: str) -> httpx.Response:
    deadline = time.monotonic() + PROPAGATION_S
    while True:
        response = call()
        if predicate(response):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {PROPAGATION_S}s; last answer {response.status_code} "
                                 f"{dict(response.headers)} {response.text[:300]}")
        time.sleep(0.02)


def _management_forms(html: str) -> dict[str, str]:
    """The hidden inline-formset counters of an admin add page, as the browser would send them."""
    return {name: value for name, value in re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"'
                                                       r'[^>]*value="(\d*)"', html)}


def _errors(response: Any) -> str:
    html = response.content.decode()
    return "\n".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>.*?</ul>|<p class="errornote">.*?</p>', html, re.S)) \
        or html[:2000]


def _plan_form(plan: Any, **changes: Any) -> dict[str, Any]:
    data = {
        "api": plan.api_id, "name": plan.name, "slug": plan.slug, "description": plan.description,
        "rate_per_second": plan.rate_per_second or "", "rate_per_minute": plan.rate_per_minute or "",
        "burst": plan.burst, "quota_per_day": plan.quota_per_day or "", "quota_per_month": plan.quota_per_month or "",
        "monthly_price": plan.monthly_price, "currency": plan.currency, "included_requests": plan.included_requests,
        "overage_price_per_1000": plan.overage_price_per_1000 or "", "visibility": plan.visibility,
        "is_active": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != "" or k == "description"}


def _action(client: Any, version: Any, action: str, **extra: Any) -> None:
    response = client.post("/admin/catalog/apiversion/", {"action": action, "_selected_action": [version.pk], **extra})
    assert response.status_code == 302, _errors(response)


def test_operator_publishes_sets_a_quota_deprecates_and_retires(make_stack: Any, client: Any) -> None:
    from portal.accounts.models import Membership, Organization, Role, User
    from portal.catalog.models import Api, ApiVersion
    from portal.keys import services as keys
    from portal.plans import services as plans
    from portal.plans.models import Plan

    stack: Stack = make_stack()
    gateway = stack.start_gateway()
    olivia = User.objects.create_user(email="olivia@tollway.test", password="x" * 20, is_staff=True,
                                      email_verified=True)
    client.force_login(olivia)

    # 1. The API, then v1 from the OpenAPI file, then publish.
    page = client.get("/admin/catalog/api/add/")
    assert page.status_code == 200
    response = client.post("/admin/catalog/api/add/", {
        "slug": "echo", "name": "Echo", "summary": "Echoes requests", "description": "", "tags": "[]",
        "visibility": "public", "owner": olivia.pk, **_management_forms(page.content.decode()),
    })
    assert response.status_code == 302, _errors(response)
    api = Api.objects.get(slug="echo")
    with OPENAPI.open("rb") as fh:
        response = client.post("/admin/catalog/apiversion/add/", {
            "api": api.pk, "label": "v1", "upstreams_text": stack.echo.url, "changelog": "",
            "connect_timeout_s": "2", "read_timeout_s": "30", "total_timeout_s": "60", "max_body_bytes": "1048576",
            "redis_failure_mode": "fail_closed", "lifecycle_events-TOTAL_FORMS": "0",
            "lifecycle_events-INITIAL_FORMS": "0",
            "openapi_file": SimpleUploadedFile(OPENAPI.name, fh.read(), content_type="application/yaml"),
        })
    assert response.status_code == 302, _errors(response)
    v1 = ApiVersion.objects.get(api=api, label="v1")
    assert v1.state == "draft"
    assert v1.openapi["paths"]["/hello"]["get"]["summary"] == "Say hello"
    _action(client, v1, "versions_publish")
    v1.refresh_from_db()
    assert v1.state == "published"

    # A developer subscribes and calls it.
    # The plan has a generous quota from the start, so the gateway counts every call.
    plan = plans.plan_create(actor=olivia, api=api, slug="free", name="Free", quota_per_day=10_000)
    alice = User.objects.create_user(email="alice@acme.test", password="x" * 20, email_verified=True)
    acme = Organization.objects.create(name="Acme", slug="acme")
    Membership.objects.create(organization=acme, user=alice, role=Role.OWNER)
    app = keys.application_create(organization=acme, name="Acme Shop", actor=alice)
    plans.subscription_create(application=app, plan=plan, actor=alice)
    key = keys.api_key_issue(application=app, label="prod", actor=alice).secret
    calls, admitted = 0, 0

    def call() -> httpx.Response:
        nonlocal calls, admitted
        calls += 1
        response = stack.call(key)
        admitted += response.status_code == 200
        return response

    wait_for(lambda: call().status_code == 200, timeout=5, message="the published version never answered")
    for _ in range(4):
        assert call().status_code == 200

    # 2. A quota in the admin, at what alice has already used: she is cut off within 1 s.
    response = client.post(f"/admin/plans/plan/{plan.pk}/change/", _plan_form(plan, quota_per_day=admitted))
    assert response.status_code == 302, _errors(response)
    refused = _within_a_second(call, lambda r: r.status_code == 429, "quota lowered in the admin")
    assert refused.json()["type"].endswith("/quota-exceeded")
    # Raised by three: within 1 s calls get through again, exactly three of them, then 429.
    before_raise = admitted
    plan = Plan.objects.get(pk=plan.pk)
    response = client.post(f"/admin/plans/plan/{plan.pk}/change/", _plan_form(plan, quota_per_day=admitted + 3))
    assert response.status_code == 302, _errors(response)
    _within_a_second(call, lambda r: r.status_code == 200, "quota raised in the admin")
    after = [call().status_code for _ in range(4)]
    assert after == [200, 200, 429, 429], after
    assert admitted == before_raise + 3
    assert stack.echo.served() == admitted

    # 3. Deprecate v1 with a sunset in 30 days: the headers appear within 1 s.
    _action(client, v1, "versions_deprecate", sunset_in_days="30")
    v1.refresh_from_db()
    assert v1.state == "deprecated"
    assert v1.sunset_at is not None
    marked = _within_a_second(call, lambda r: "Deprecation" in r.headers, "deprecation")
    assert marked.headers["Deprecation"] == f"@{int(v1.deprecated_at.timestamp())}"
    assert email.utils.parsedate_to_datetime(marked.headers["Sunset"]) == v1.sunset_at.replace(microsecond=0)

    # The deprecation report lists Acme Shop with every call it made to v1.
    wait_drained(stack)
    response = client.get("/analytics/deprecations/?format=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["api_name"], r["version"], r["organization"], r["application"], int(r["requests"])) for r in rows] == [
        ("Echo", "v1", "Acme", "Acme Shop", calls)
    ]
    page = client.get("/analytics/deprecations/")
    assert "Acme Shop" in page.content.decode()

    # 4. Retire: 410 within 1 s, and the upstream sees nothing more.
    served = stack.echo.served()
    _action(client, v1, "versions_retire")
    gone = _within_a_second(call, lambda r: r.status_code == 410, "retirement")
    assert gone.json()["type"].endswith("/version-retired")
    assert [stack.call(key).status_code for _ in range(3)] == [410] * 3
    assert stack.echo.served() == served
    assert gateway.proc is not None
    assert gateway.proc.poll() is None
