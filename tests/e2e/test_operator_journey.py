"""Operator: olivia builds and runs an API in the Django admin (Chromium), and the
gateway follows.

1. Create an API, add v1 from an OpenAPI file, publish it.
2. Set a quota in the admin: the gateway enforces the new quota within 1 s.
3. Deprecate v1: Deprecation/Sunset headers appear (within 1 s) and the deprecation
   report lists the application still calling it, with its calls.
4. Retire v1: callers get 410 (within 1 s).

The 1 s is a behavioural deadline: the gateway is polled from the moment the admin
page that confirms the change has loaded until the change shows or 1 s has passed.
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
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.conftest import PASSWORD
from tests.e2e.conftest import Stack, requires_postgres, wait_drained, wait_for

pytestmark = [requires_postgres, pytest.mark.browser, pytest.mark.slow]

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


def _saved(page: Any) -> None:
    """The admin answered a save or an action with a success message (not a form error)."""
    expect(page.locator("ul.messagelist li.success")).to_have_count(1)
    expect(page.locator(".errornote")).to_have_count(0)


def _version_action(page: Any, version_pk: int, action: str, **fields: str) -> None:
    page.goto("/admin/catalog/apiversion/")
    page.locator(f"input.action-select[value='{version_pk}']").check()
    page.locator("select[name=action]").select_option(action)
    for name, value in fields.items():
        page.locator(f"input[name={name}]").fill(value)
    page.get_by_role("button", name="Go").click()
    _saved(page)


def _set_quota(page: Any, plan_pk: int, quota: int) -> None:
    page.goto(f"/admin/plans/plan/{plan_pk}/change/")
    page.locator("#id_quota_per_day").fill(str(quota))
    page.locator("input[name=_save]").click()
    _saved(page)


def test_operator_publishes_sets_a_quota_deprecates_and_retires(make_stack: Any, browsing: Browsing) -> None:
    from portal.accounts.models import Membership, Organization, Role, User
    from portal.catalog.models import Api, ApiVersion
    from portal.keys import services as keys
    from portal.plans import services as plans

    stack: Stack = make_stack()
    stack.start_gateway()
    olivia = User.objects.create_user(email="olivia@tollway.test", password=PASSWORD, is_staff=True,
                                      email_verified=True)
    page = browsing.new_page()
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Email address").fill(olivia.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))

    # 1. The API, then v1 from the OpenAPI file, then publish.
    page.goto("/admin/catalog/api/add/")
    page.locator("#id_name").fill("Echo")
    page.locator("#id_name").press("Tab")  # lets the admin's slug prepopulation run before we set it
    page.locator("#id_slug").fill("echo")
    expect(page.locator("#id_slug")).to_have_value("echo")
    page.locator("#id_summary").fill("Echoes requests")
    page.locator("#id_tags").fill("[]")
    page.locator("#id_owner").select_option(str(olivia.pk))
    page.locator("input[name=_save]").click()
    _saved(page)
    api = Api.objects.get(slug="echo")

    page.goto("/admin/catalog/apiversion/add/")
    page.locator("#id_api").select_option(str(api.pk))
    page.locator("#id_label").fill("v1")
    page.locator("#id_upstreams_text").fill(stack.echo.url)
    page.locator("#id_redis_failure_mode").select_option("fail_closed")
    page.locator("#id_openapi_file").set_input_files(str(OPENAPI))
    page.locator("input[name=_save]").click()
    _saved(page)
    v1 = ApiVersion.objects.get(api=api, label="v1")
    assert v1.state == "draft"
    assert v1.openapi["paths"]["/hello"]["get"]["summary"] == "Say hello"
    _version_action(page, v1.pk, "versions_publish")
    v1.refresh_from_db()
    assert v1.state == "published"

    # A developer subscribes and calls it. The plan has a generous quota from the
    # start, so the gateway counts every call.
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
    _set_quota(page, plan.pk, admitted)
    refused = _within_a_second(call, lambda r: r.status_code == 429, "quota lowered in the admin")
    assert refused.json()["type"].endswith("/quota-exceeded")
    # Raised by three: within 1 s calls get through again, exactly three of them, then 429.
    before_raise = admitted
    _set_quota(page, plan.pk, admitted + 3)
    _within_a_second(call, lambda r: r.status_code == 200, "quota raised in the admin")
    after = [call().status_code for _ in range(4)]
    assert after == [200, 200, 429, 429], after
    assert admitted == before_raise + 3
    assert stack.echo.served() == admitted

    # 3. Deprecate v1 with a sunset in 30 days: the headers appear within 1 s.
    _version_action(page, v1.pk, "versions_deprecate", sunset_in_days="30")
    v1.refresh_from_db()
    assert v1.state == "deprecated"
    assert v1.sunset_at is not None
    marked = _within_a_second(call, lambda r: "Deprecation" in r.headers, "deprecation")
    assert marked.headers["Deprecation"] == f"@{int(v1.deprecated_at.timestamp())}"
    assert email.utils.parsedate_to_datetime(marked.headers["Sunset"]) == v1.sunset_at.replace(microsecond=0)

    # The deprecation report lists Acme Shop with every call it made to v1.
    wait_drained(stack)
    page.goto("/analytics/deprecations/")
    expect(page.locator("main")).to_contain_text("Acme Shop")
    exported = page.request.get("/analytics/deprecations/?format=csv")
    assert exported.ok
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    assert [(r["api_name"], r["version"], r["organization"], r["application"], int(r["requests"])) for r in rows] == [
        ("Echo", "v1", "Acme", "Acme Shop", calls)
    ]

    # 4. Retire: 410 within 1 s, and the upstream sees nothing more.
    served = stack.echo.served()
    _version_action(page, v1.pk, "versions_retire")
    gone = _within_a_second(call, lambda r: r.status_code == 410, "retirement")
    assert gone.json()["type"].endswith("/version-retired")
    assert [stack.call(key).status_code for _ in range(3)] == [410] * 3
    assert stack.echo.served() == served
    assert browsing.csp_violations == []
