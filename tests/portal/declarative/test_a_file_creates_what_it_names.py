"""A file can create an API with versions (walking the lifecycle), plans and overrides, and reads
an OpenAPI document beside it by relative path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from portal.catalog.models import Api
from portal.declarative.services import ConfigError, config_sync
from portal.plans import services as plans
from portal.plans.models import Override
from tests.portal.declarative.conftest import line_of, load

OPENAPI = """\
openapi: 3.0.3
info: {title: Billing, version: '1'}
paths: {}
"""

FILE = """\
format_version: 1
apis:
  - slug: billing
    name: Billing
    tags: [money]
    versions:
      - label: v1
        state: deprecated
        successor: v2
        upstreams: [{url: "http://127.0.0.1:8091", weight: 3}]
        openapi_file: specs/billing.yaml
      - label: v2
        state: published
        allowed_methods: [GET, POST]
        cors_allowed_origins: ["https://app.example.com"]
        upstreams: [{url: "http://127.0.0.1:8092"}]
plans:
  - api: billing
    slug: basic
    name: Basic
    quota_per_month: 5000
    monthly_price: "9.90"
"""


@pytest.mark.django_db
def test_it_creates_an_api_its_versions_and_a_plan(olivia, tmp_path, written):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "billing.yaml").write_text(OPENAPI)

    result = config_sync(document=load(written(FILE)), actor=olivia)

    assert "version billing v1: state draft -> deprecated" in [str(c) for c in result.changes]
    api = Api.objects.get(slug="billing")
    v1, v2 = api.versions.order_by("label")
    assert (v1.state, v1.successor, v1.openapi["info"]["title"]) == ("deprecated", v2, "Billing")
    assert [(u.url, u.weight) for u in v1.upstreams.all()] == [("http://127.0.0.1:8091", 3)]
    assert (v2.state, v2.allowed_methods, v2.cors_allowed_origins) == (
        "published",
        ["GET", "POST"],
        ["https://app.example.com"],
    )
    assert str(api.plans.get(slug="basic").monthly_price) == "9.90"
    # And the file now describes the live state.
    assert config_sync(document=load(written(FILE)), actor=olivia).changes == []


@pytest.mark.django_db
def test_an_openapi_file_outside_the_directory_is_refused(olivia, written):
    path = written(FILE.replace("specs/billing.yaml", "../../etc/passwd"))

    with pytest.raises(ConfigError) as caught:
        config_sync(document=load(path), actor=olivia)

    line = line_of(path.read_text(), "openapi_file")
    assert caught.value.errors == [
        f"{path}:{line}: apis[0].versions[0].openapi_file: ../../etc/passwd is outside the configuration's directory"
    ]
    assert not Api.objects.filter(slug="billing").exists()


@pytest.mark.django_db
def test_an_edited_override_is_replaced(alice, olivia, alice_app, free_plan, dumped):
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    plans.override_create(
        subscription=subscription, actor=olivia, expires_at=timezone.now() + dt.timedelta(days=2), quota_per_day=10
    )

    def edit(data):
        data["overrides"][0]["quota_per_day"] = 20

    result = config_sync(document=load(dumped(edit)), actor=olivia)

    assert [c.field for c in result.changes] == ["quota_per_day"]
    assert list(Override.objects.values_list("quota_per_day", flat=True)) == [20]
