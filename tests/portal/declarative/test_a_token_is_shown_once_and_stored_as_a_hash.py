"""An automation token is printed once, at creation; the portal keeps only its display
prefix and its HMAC-SHA256 under the API keys' secret, and never shows it again."""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.core.management import call_command

from portal.audit.models import AuditEvent
from portal.core.logging import redact
from portal.declarative.models import AutomationToken
from portal.keys.services import key_hash


def _create(name: str, actor: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("config", "token", "create", name, "--actor", actor, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_the_token_is_printed_once_and_only_its_hash_is_kept(olivia, caplog):
    caplog.set_level(logging.DEBUG)

    out, err = _create("ci-deploy", olivia.email)

    secret = out.strip()
    assert re.fullmatch(r"twc_[0-9A-Za-z]{32}", secret)
    assert "not shown again" in err
    token = AutomationToken.objects.get(name="ci-deploy")
    assert token.prefix == secret[:10]
    assert token.token_hash == key_hash(secret)
    assert token.created_by == olivia
    assert token.last_used_at is None
    assert token.revoked_at is None

    listing = io.StringIO()
    call_command("config", "token", "list", stdout=listing)
    assert "ci-deploy" in listing.getvalue()
    assert token.prefix in listing.getvalue()

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    for where, text in {"database": dump.getvalue(), "list": listing.getvalue(), "logs": caplog.text}.items():
        assert secret not in text, f"the token leaked into the {where}"
    event = AuditEvent.objects.get(action="automation_token.create")
    assert event.actor == olivia
    assert event.after["name"] == "ci-deploy"


@pytest.mark.django_db
def test_two_tokens_differ_and_a_name_is_taken_once(olivia):
    first, _ = _create("ci-deploy", olivia.email)
    second, _ = _create("nightly", olivia.email)
    assert first != second

    with pytest.raises(Exception, match="already exists"):
        _create("ci-deploy", olivia.email)
    with pytest.raises(Exception, match="lowercase letters"):
        _create("CI Deploy", olivia.email)
    assert AutomationToken.objects.count() == 2


@pytest.mark.django_db
def test_a_token_in_a_log_line_is_redacted(olivia):
    out, _ = _create("ci-deploy", olivia.email)
    secret = out.strip()

    assert redact(f"deploying with {secret}!") == "deploying with twc_[REDACTED]!"
