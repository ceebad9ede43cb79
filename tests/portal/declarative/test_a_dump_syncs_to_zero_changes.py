"""Dumping, then syncing the dump, changes nothing; and the sync records what it applied."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.declarative.selectors import config_diff, config_drift, config_dump
from portal.declarative.services import config_sync
from portal.plans import services as plans
from tests.portal.declarative.conftest import load


@pytest.fixture
def busy_portal(alice, olivia, alice_app, free_plan, pro_plan, echo_api):
    """The Echo API with both plans, a subscription and an override: every part of the format."""
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    plans.override_create(
        subscription=subscription,
        actor=olivia,
        expires_at=timezone.now() + dt.timedelta(days=3),
        reason="launch week",
        quota_per_day=5000,
    )
    return echo_api


@pytest.mark.django_db
def test_it_finds_no_change_between_the_live_state_and_its_dump(busy_portal, dumped):
    assert config_diff(document=load(dumped()), prune=True) == []


@pytest.mark.django_db
def test_syncing_the_dump_changes_nothing_and_audits_only_the_sync(busy_portal, olivia, dumped):
    before = config_dump()
    events = AuditEvent.objects.count()

    result = config_sync(document=load(dumped()), actor=olivia, prune=True)

    assert result.changes == []
    assert result.applied
    assert config_dump() == before
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)[events:]) == ["config.sync"]
    assert not config_drift().drifted


@pytest.mark.django_db
def test_the_command_round_trips(busy_portal, olivia, tmp_path, capsys):
    path = tmp_path / "tollway.yaml"
    call_command("config", "dump", "--output", str(path))
    call_command("config", "sync", str(path), "--actor", olivia.email, "--prune")
    call_command("config", "diff", str(path))

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "0 change(s) changed." in captured.err
    assert captured.err.rstrip().endswith("0 change(s).")


@pytest.mark.django_db
def test_the_seeded_demo_round_trips(settings, dumped):
    """The example in docs/configuration-as-code.md: the demo's dump diffs to nothing."""
    import io

    settings.TOLLWAY_DEMO_PASSWORD = "demo-password-for-tests"
    call_command("seed_demo", stdout=io.StringIO())

    assert config_diff(document=load(dumped()), prune=True) == []
