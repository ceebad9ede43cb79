"""The operators' dashboard says whether the live state still matches the last sync."""

from __future__ import annotations

import pytest

from portal.declarative.selectors import config_drift
from portal.declarative.services import config_sync
from portal.plans import services as plans
from tests.portal.declarative.conftest import load


@pytest.mark.django_db
def test_it_goes_from_never_synced_to_in_sync_to_drifted(olivia, pro_plan, dumped, client):
    client.force_login(olivia)
    assert not config_drift().synced
    assert "never synced" in client.get("/analytics/").content.decode()

    config_sync(document=load(dumped()), actor=olivia)
    assert "in sync with the last sync" in client.get("/analytics/").content.decode()

    plans.plan_update(plan=pro_plan, actor=olivia, quota_per_month=5)
    drift = config_drift()
    assert drift.drifted
    assert drift.applied_by == olivia.email
    assert "Configuration drift:" in client.get("/analytics/").content.decode()
