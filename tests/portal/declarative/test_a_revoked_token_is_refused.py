"""A revoked or unknown token gets a 401 in JSON and changes nothing; so does the token of
an operator who is no longer one (a token never outlives its creator's rights)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from portal.audit.models import AuditEvent
from portal.declarative.models import AutomationToken
from portal.declarative.selectors import config_dump
from portal.declarative.services import automation_token_create
from tests.portal.declarative.conftest import edited_quota_yaml


def _sync(token_client, secret, dumped):
    return token_client(secret).post("/api/v1/config/sync/", {"document": edited_quota_yaml(dumped)}, format="json")


def _assert_refused(response) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == {
        "type": "authentication_failed",
        "message": "Unknown or revoked automation token.",
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_revoked_token_gets_401_and_changes_nothing(olivia, pro_plan, dumped, token_client):
    _, secret = automation_token_create(name="ci-deploy", actor=olivia)
    err = io.StringIO()
    call_command("config", "token", "revoke", "ci-deploy", "--actor", olivia.email, stderr=err)
    assert "Revoked ci-deploy" in err.getvalue()
    assert AutomationToken.objects.get(name="ci-deploy").revoked_at is not None
    revoked = AuditEvent.objects.get(action="automation_token.revoke")
    assert revoked.actor == olivia
    assert revoked.after["revoked_at"]
    before = config_dump()

    _assert_refused(_sync(token_client, secret, dumped))

    assert config_dump() == before
    assert not AuditEvent.objects.filter(action__in=["config.sync", "plan.update"]).exists()
    assert AutomationToken.objects.get(name="ci-deploy").last_used_at is None


@pytest.mark.django_db
def test_an_unknown_token_gets_401(olivia, pro_plan, dumped, token_client):
    _, secret = automation_token_create(name="ci-deploy", actor=olivia)
    forged = secret[:-1] + ("a" if secret[-1] != "a" else "b")  # same prefix, wrong token

    _assert_refused(_sync(token_client, forged, dumped))
    _assert_refused(_sync(token_client, "twc_" + "x" * 32, dumped))
    pro_plan.refresh_from_db()
    assert pro_plan.quota_per_month == 1_000_000


@pytest.mark.django_db
def test_a_demoted_creators_token_gets_401(olivia, pro_plan, dumped, token_client):
    _, secret = automation_token_create(name="ci-deploy", actor=olivia)
    olivia.is_staff = False
    olivia.save(update_fields=["is_staff"])

    _assert_refused(_sync(token_client, secret, dumped))
    pro_plan.refresh_from_db()
    assert pro_plan.quota_per_month == 1_000_000
