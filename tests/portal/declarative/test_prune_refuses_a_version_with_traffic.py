"""--prune retires a version the file no longer names, but not one that served requests in the
last 24 hours (analytics' rollups, through the portal's extension point) unless forced."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from analytics.models import TrafficRollup
from portal.catalog.models import ApiVersion
from portal.declarative.selectors import config_dump
from portal.declarative.services import ConfigError, config_sync
from tests.portal.declarative.conftest import load


def _without_v1(data):
    echo = next(a for a in data["apis"] if a["slug"] == "echo")
    echo["versions"] = [v for v in echo["versions"] if v["label"] != "v1"]
    for version in echo["versions"]:
        version["successor"] = None


def _traffic(api, label, *, hours_ago, requests=42):
    bucket = (timezone.now() - dt.timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
    TrafficRollup.objects.create(
        granularity="h", bucket=bucket, api_id=api.pk, version=label, status_class=2, requests=requests
    )


@pytest.mark.django_db
def test_it_retires_a_version_without_recent_traffic(olivia, echo_api, dumped):
    _traffic(echo_api, "v1", hours_ago=30)

    result = config_sync(document=load(dumped(_without_v1)), actor=olivia, prune=True)

    assert [str(c) for c in result.changes] == ["version echo v1: state deprecated -> retired"]
    assert echo_api.versions.get(label="v1").state == "retired"


@pytest.mark.django_db
def test_it_refuses_a_version_with_traffic_in_the_last_day_and_changes_nothing(olivia, echo_api, dumped):
    _traffic(echo_api, "v1", hours_ago=2, requests=1234)
    path = dumped(_without_v1)
    before = config_dump()

    with pytest.raises(ConfigError) as caught:
        config_sync(document=load(path), actor=olivia, prune=True)

    assert "version echo v1 had 1,234 request(s) in the last 24 hours" in caught.value.message
    assert config_dump() == before


@pytest.mark.django_db
def test_force_retires_it_anyway(olivia, echo_api, dumped):
    _traffic(echo_api, "v1", hours_ago=2)

    config_sync(document=load(dumped(_without_v1)), actor=olivia, prune=True, force=True)

    assert ApiVersion.objects.get(api=echo_api, label="v1").state == "retired"
