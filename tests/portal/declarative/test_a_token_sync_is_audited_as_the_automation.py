"""A sync over REST with an automation token applies the file, and the audit log names
"automation:<name>" for the sync and for every change it made, not the token's creator."""

from __future__ import annotations

import pytest

from portal.audit.models import AuditEvent
from portal.declarative.models import AppliedConfig, AutomationToken
from portal.declarative.selectors import config_drift
from portal.declarative.services import automation_token_create
from tests.portal.declarative.conftest import edited_quota_yaml


@pytest.mark.django_db
def test_a_token_sync_names_the_automation(olivia, pro_plan, dumped, token_client):
    _, secret = automation_token_create(name="ci-deploy", actor=olivia)

    response = token_client(secret).post(
        "/api/v1/config/sync/", {"document": edited_quota_yaml(dumped)}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["applied"] is True
    pro_plan.refresh_from_db()
    assert pro_plan.quota_per_month == 2_000_000

    sync = AuditEvent.objects.get(action="config.sync")
    assert (sync.actor, sync.actor_email) == (None, "automation:ci-deploy")
    change = AuditEvent.objects.get(action="plan.update", object_id=str(pro_plan.pk))
    assert (change.actor, change.actor_email) == (None, "automation:ci-deploy")
    assert change.after["quota_per_month"] == 2_000_000
    assert "automation:ci-deploy" in str(change)

    applied = AppliedConfig.objects.get()
    assert (applied.actor, applied.actor_email) == (None, "automation:ci-deploy")
    assert config_drift().applied_by == "automation:ci-deploy"
    assert AutomationToken.objects.get(name="ci-deploy").last_used_at is not None


@pytest.mark.django_db
def test_the_token_also_dumps_and_diffs(olivia, pro_plan, dumped, token_client):
    _, secret = automation_token_create(name="ci-deploy", actor=olivia)
    client = token_client(secret)

    assert client.get("/api/v1/config/").status_code == 200
    diff = client.post("/api/v1/config/diff/", {"document": edited_quota_yaml(dumped)}, format="json")
    assert diff.status_code == 200, diff.content
    assert [c["field"] for c in diff.json()["changes"]] == ["quota_per_month"]
    assert not AuditEvent.objects.filter(action="config.sync").exists()


@pytest.mark.django_db
def test_an_operator_sync_is_still_audited_as_the_operator(olivia, pro_plan, dumped, client_for):
    response = client_for(olivia).post("/api/v1/config/sync/", {"document": edited_quota_yaml(dumped)}, format="json")

    assert response.status_code == 200, response.content
    for action in ("config.sync", "plan.update"):
        event = AuditEvent.objects.get(action=action)
        assert (event.actor, event.actor_email) == (olivia, olivia.email)
