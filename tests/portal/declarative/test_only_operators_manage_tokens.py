"""Only operators create and revoke automation tokens: developers are refused by the
service and by the command; the admin lists tokens without secrets and revokes through
the service."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from portal.audit.models import AuditEvent
from portal.core.errors import NotAllowed
from portal.declarative.models import AutomationToken
from portal.declarative.services import automation_token_create, automation_token_revoke


@pytest.mark.django_db
def test_a_developer_cannot_create_or_revoke_a_token(bob, olivia):
    with pytest.raises(NotAllowed):
        automation_token_create(name="ci-deploy", actor=bob)
    with pytest.raises(CommandError, match="not an operator"):
        call_command("config", "token", "create", "ci-deploy", "--actor", bob.email)
    assert not AutomationToken.objects.exists()

    token, _ = automation_token_create(name="ci-deploy", actor=olivia)
    with pytest.raises(NotAllowed):
        automation_token_revoke(token=token, actor=bob)
    with pytest.raises(CommandError, match="not an operator"):
        call_command("config", "token", "revoke", "ci-deploy", "--actor", bob.email)
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.django_db
def test_the_admin_lists_tokens_and_revokes_through_the_service(olivia, client):
    token, secret = automation_token_create(name="ci-deploy", actor=olivia)
    client.force_login(olivia)

    listing = client.get("/admin/declarative/automationtoken/")
    assert listing.status_code == 200
    assert b"ci-deploy" in listing.content
    assert secret.encode() not in listing.content
    assert client.get("/admin/declarative/automationtoken/add/").status_code == 403

    response = client.post(
        "/admin/declarative/automationtoken/", {"action": "tokens_revoke", "_selected_action": [token.pk]}
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.get(action="automation_token.revoke").actor == olivia
