"""Operators diff and sync over REST; a dry run returns the diff as JSON; developers are denied."""

from __future__ import annotations

import pytest

from portal.declarative.selectors import config_dump
from tests.portal.declarative.conftest import line_of, plan_entry


def _edited_yaml(dumped) -> str:
    return dumped(lambda d: plan_entry(d, "echo", "pro").update(quota_per_month=2_000_000)).read_text()


@pytest.mark.django_db
def test_a_dry_run_returns_the_diff_and_changes_nothing(olivia, pro_plan, dumped, client_for):
    before = config_dump()

    response = client_for(olivia).post(
        "/api/v1/config/sync/", {"document": _edited_yaml(dumped), "dry_run": True}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["applied"] is False
    assert body["changes"] == [
        {
            "action": "update",
            "subject": "plan echo/pro",
            "field": "quota_per_month",
            "before": 1_000_000,
            "after": 2_000_000,
            "text": "plan echo/pro: quota_per_month 1000000 -> 2000000",
        }
    ]
    assert config_dump() == before


@pytest.mark.django_db
def test_a_sync_applies_it(olivia, pro_plan, dumped, bearer_for):
    response = bearer_for(olivia).post("/api/v1/config/sync/", {"document": _edited_yaml(dumped)}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["applied"] is True
    pro_plan.refresh_from_db()
    assert pro_plan.quota_per_month == 2_000_000


@pytest.mark.django_db
def test_a_bad_document_is_a_400_naming_the_line(olivia, echo_api, dumped, client_for):
    text = dumped(lambda d: plan_entry(d, "echo", "pro").update(api="nope")).read_text()

    response = client_for(olivia).post("/api/v1/config/diff/", {"document": text}, format="json")

    assert response.status_code == 400
    line = line_of(text, "api: nope")
    assert response.json()["error"]["fields"]["config"] == [
        f"request:{line}: plans[1].api: unknown API 'nope': neither in this file nor in the portal"
    ]


@pytest.mark.django_db
def test_the_dump_and_the_schema_are_served(olivia, echo_api, client_for):
    client = client_for(olivia)

    assert client.get("/api/v1/config/").json() == config_dump()
    assert client.get("/api/v1/config/schema/").json()["title"] == "Tollway configuration"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [("get", "/api/v1/config/"), ("post", "/api/v1/config/diff/"), ("post", "/api/v1/config/sync/")],
)
def test_a_developer_is_denied(alice, charlie, echo_api, dumped, client_for, method, url):
    for user in (alice, charlie):
        response = getattr(client_for(user), method)(url, {"document": dumped().read_text()}, format="json")
        assert response.status_code == 403
